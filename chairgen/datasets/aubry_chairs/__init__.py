"""The `aubry_chairs` TFDS builder (see README.md beside this file)."""
