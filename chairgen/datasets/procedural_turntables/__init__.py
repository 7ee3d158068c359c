"""The `procedural_turntables` TFDS builder (see README.md beside this file)."""
