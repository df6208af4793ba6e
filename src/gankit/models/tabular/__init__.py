"""Table model families: CTGAN's conditional WGAN-GP and GAIN's hint game."""
