"""Network families: one file per family, generator and discriminator together."""
