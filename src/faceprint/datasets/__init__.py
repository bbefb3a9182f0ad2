"""Face data sets: where they are and how their files are read; no metric, no model.

* :mod:`.root`: :func:`data_root`, the shared data sets folder (``$FACEPRINT_DATA``);
* :mod:`.lfw`: LFW paths, the official pair lists, gender lists, per-person image folders;
* :mod:`.utkface`: UTKFace file-name labels, groups and seeded sampling;
* :mod:`.nuaa`: NUAA (and ``live/`` + attack-type folders) presentation-attack samples;
* :mod:`.orl`: AT&T / ORL images and their person numbers;
* :mod:`.stats`: :func:`dataset_stats`, depth / breadth / duplicates / composition of a folder.

The metrics these feed are in :mod:`faceprint.evaluation` (which may import this package; this
package never imports evaluation, a pipeline stage or an interface).
"""

from __future__ import annotations

from .lfw import (
    GenderLists,
    LfwPaths,
    Pair,
    lfw_gender,
    lfw_identities,
    lfw_pairs,
    lfw_paths,
    pair_gender_groups,
    read_gender_lists,
    read_lfw_pairs,
    select_folds,
)
from .nuaa import LIVE_FOLDER_NAMES, NuaaName, nuaa_dir, nuaa_images, nuaa_name, nuaa_split, pad_samples
from .orl import orl_dir, orl_images
from .root import DATA_ENV_VAR, data_root
from .stats import DEPTH_BINS, IMAGE_SUFFIXES, DatasetStats, dataset_stats
from .utkface import (
    AGE_BANDS,
    UTK_GENDERS,
    UTK_RACES,
    UtkLabel,
    age_band,
    parse_utkface_name,
    sample_images,
    utkface_groups,
    utkface_images,
)

__all__ = [
    # root
    "DATA_ENV_VAR",
    "data_root",
    # lfw
    "LfwPaths",
    "Pair",
    "GenderLists",
    "lfw_paths",
    "read_lfw_pairs",
    "lfw_pairs",
    "select_folds",
    "lfw_identities",
    "read_gender_lists",
    "lfw_gender",
    "pair_gender_groups",
    # utkface
    "AGE_BANDS",
    "UTK_GENDERS",
    "UTK_RACES",
    "UtkLabel",
    "parse_utkface_name",
    "age_band",
    "utkface_groups",
    "utkface_images",
    "sample_images",
    # nuaa
    "LIVE_FOLDER_NAMES",
    "nuaa_dir",
    "nuaa_images",
    "nuaa_name",
    "nuaa_split",
    "NuaaName",
    "pad_samples",
    # orl
    "orl_dir",
    "orl_images",
    # stats
    "DatasetStats",
    "dataset_stats",
    "IMAGE_SUFFIXES",
    "DEPTH_BINS",
]
