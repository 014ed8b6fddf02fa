"""Using a trained network: drawing samples, latent control, tiled translation and upscaling, the pipelines
``ganforge.load`` returns. Knows recipes only through the methods they define, never by name."""
from typing import Any

Recipe = Any  # a ganforge.recipes.base.Recipe: recipes sit above inference, which only calls their methods
