"""Built-in data sets; importing a module registers its sets."""

from . import digits, fashion_mnist, image_folder, mnist_subset, peak, torchvision_sets  # noqa: F401
