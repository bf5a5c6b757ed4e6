"""Top-down COCO-17 keypoint models that live in this repository and train on the embedded data on a CPU.

``mean-pose`` (no pixels), ``regression`` (DeepPose-style), ``heatmap`` (Gaussian heatmaps) and ``soft-argmax``
(integral regression) share one crop utility (64x48 crops, 1.25x padding) and one adapter; ``train.py`` trains
any of them by name (``bench train --task keypoints --model NAME``), and ``adapters/weights/keypoints_<name>.pt``
holds the committed seed-0 weights.  On the embedded val split, pycocotools OKS AP with GT-box prompts is about
0.66 (heatmap), 0.59 (soft-argmax), 0.29 (regression) and 0.001 (mean-pose).
"""
