"""Run files: checkpoints, run directories, pictures and provenance (below the engine and the recipes)."""
