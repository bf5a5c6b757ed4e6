"""OpenMMLab models (mmdet, mmpose, mmseg) behind the Adapter interface: ``--model mmdet:CONFIG`` and friends.

Installed by ``scripts/install_openmmlab.sh`` (mmcv-lite plus a torchvision-backed ``mmcv._ext``, see
``_ext_shim.py``); every heavy import happens inside functions, so listing models never imports OpenMMLab.
"""
