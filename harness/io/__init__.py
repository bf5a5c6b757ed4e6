"""Reading and writing files: JSON/YAML, images, .flo, the prediction codec, VOC box files, cache folders."""
