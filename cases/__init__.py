"""Case construction: tensors and memory layouts the ops are tested on."""
