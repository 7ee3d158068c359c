"""The `shapenet_turntables` TFDS builder (see README.md beside this file)."""
