"""Detection and instance-segmentation models that live in this repository and train on the embedded data on a CPU.

``centernet`` is a one-stage anchor-free detector (class heatmaps at stride 4 plus a distance-to-edges box at
every heatmap cell, TTFNet-style); ``centernet-mask`` is the same detector with a RoIAlign mask head.
``prior-boxes`` and ``prior-boxes-mask`` are the trivial baselines they must beat: fixed boxes fitted to the
train split, scored by the class prior.  ``train.py`` trains any of them by name.
"""
