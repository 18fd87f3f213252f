"""Analysis of trained nets: first-layer SVD, data-dependent orthogonality, reverse-pass
reconstructions, per-layer mutual information. Pure torch/numpy/matplotlib (no pyplot)."""

from racecar_study.core.analysis.images import minmax_rescale, save_image_grid
from racecar_study.core.analysis.mutual_information import (
    LayerMI,
    discrete_information,
    layer_information,
    mi_plane_plot,
    symbols,
)
from racecar_study.core.analysis.orthogonality import (
    apply_adjoint,
    apply_linear_operator,
    orthogonality_residuals,
)
from racecar_study.core.analysis.pictures import save_model_pictures
from racecar_study.core.analysis.reconstruction import reconstruction_images, save_reconstruction_grid
from racecar_study.core.analysis.svd import (
    SvdResult,
    first_layer_svd,
    first_linear_layer,
    vectors_to_images,
    weight_matrix,
)

__all__ = [
    "LayerMI",
    "SvdResult",
    "apply_adjoint",
    "apply_linear_operator",
    "discrete_information",
    "first_layer_svd",
    "first_linear_layer",
    "layer_information",
    "mi_plane_plot",
    "minmax_rescale",
    "orthogonality_residuals",
    "reconstruction_images",
    "save_image_grid",
    "save_model_pictures",
    "save_reconstruction_grid",
    "symbols",
    "vectors_to_images",
    "weight_matrix",
]
