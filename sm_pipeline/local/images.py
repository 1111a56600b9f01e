"""Which container images have a local equivalent (the project's Python), and what version they are."""

from __future__ import annotations

import re

# Framework images whose Python stack (pandas, numpy, scikit-learn, xgboost) the project's venv provides.
LOCAL_FRAMEWORK_REPOSITORIES = ("sagemaker-scikit-learn", "sagemaker-xgboost", "xgboost")


def image_repository(image: str) -> str:
    """The repository part of an image URI (``.../sagemaker-xgboost:1.0-1-cpu-py3`` → ``sagemaker-xgboost``)."""
    name = image.rsplit("/", 1)[-1]
    return name.split("@", 1)[0].split(":", 1)[0]


def image_tag(image: str) -> str:
    """The tag of an image URI ('' if none)."""
    name = image.rsplit("/", 1)[-1].split("@", 1)[0]
    return name.split(":", 1)[1] if ":" in name else ""


def has_local_equivalent(image: str) -> bool:
    """True for sagemaker-scikit-learn and sagemaker-xgboost images."""
    return isinstance(image, str) and image_repository(image) in LOCAL_FRAMEWORK_REPOSITORIES


def is_xgboost_image(image: str) -> bool:
    """True for the built-in/framework XGBoost images."""
    return isinstance(image, str) and image_repository(image) in ("sagemaker-xgboost", "xgboost")


def xgboost_writes_pickle(image: str) -> bool:
    """True if this XGBoost image version saves ``xgboost-model`` as a pickle (0.90-x and 1.0-x)."""
    match = re.match(r"(\d+)\.(\d+)", image_tag(image))
    if not match:
        return False  # 'latest' and untagged images are current versions: native format
    return (int(match.group(1)), int(match.group(2))) < (1, 3)
