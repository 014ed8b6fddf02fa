"""Using a trained network: drawing samples, latent control, tiled translation and upscaling, the pipelines
``ganforge.load`` returns. Knows recipes only through the methods they define, never by name."""
