"""Top-down keypoint models that live in this repository and train on the embedded data on a CPU.

``mean-pose`` (no pixels), ``regression`` (DeepPose-style), ``heatmap`` (Gaussian heatmaps) and ``soft-argmax``
(integral regression) share one crop utility (64x48 crops, 1.25x padding) and one adapter; ``train.py`` trains
any of them by name (``bench train --task keypoints --model NAME [--dataset mpii]``).  Each ships seed-0 weights
per skeleton (``skeletons.py``): ``adapters/weights/keypoints_<name>.pt`` for COCO-17 and
``keypoints_<name>_mpii.pt`` for MPII-16, and loads the ones of the dataset it is bound to.  On the embedded val
splits with GT-box prompts: pycocotools OKS AP about 0.66 (heatmap), 0.59 (soft-argmax), 0.29 (regression) and
0.001 (mean-pose); MPII PCKh@0.5 0.906 (heatmap), 0.873 (soft-argmax), 0.746 (regression), 0.360 (mean-pose).
"""
