"""torchvision's pretrained models behind the Adapter interface (``tv-<builder>`` names); see labels.py for
the label spaces and _common.py for how weights are found without downloading."""
