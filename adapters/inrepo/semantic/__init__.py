"""In-repo semantic segmentation: FCN, U-Net and ASPP networks trained on the embedded VOC-layout shapes, plus
the majority-class baseline every learned model must beat."""
