"""Generated tasks are pinned: the shipped policies and every number in ``bench/RESULTS.md`` were
measured on them, so a change to a family's spec or sampler must not move a single task.

Each hash covers, per family and split, the digests of the canonical held-out set
(``heldout_tasks(split, 100)``) followed by those of ``sample_tasks(20, split,
default_rng(seed))`` for seeds 0, 1 and 7; a second hash covers the privileged observation
(``hidden_params``, float32 bytes) of the held-out set. Both were computed from main at d8d4acb,
before the families' parameters moved into one declarative spec each -- except navigate-v1's,
computed at 39c4ee0, the commit that gave navigate-v1 an open floor (its oracle stalled on
navigate's maps; bench/RESULTS.md), on which its policies were trained -- and reach-v2's,
computed at 110d503, the commit that introduced it, and grasp-v2's, computed with the commit
that introduced it.
"""

import hashlib

import numpy as np
import pytest

import metarobot
from metarobot.registry import _BUILTIN

SEEDS = (0, 1, 7)

#: (family, split) -> (task digests hash, hidden_params hash), measured at d8d4acb (navigate-v1: 39c4ee0)
PINNED: dict[tuple[str, str], tuple[str, str]] = {
    ("cartpole", "train"): (
        "a9ce676f1333ea2577e1c389d9e5c7f5e4656068657b4bbac470a6cc0d8c3e81",
        "f834aa80fe0c29ce82ede58ca55505c2e326143926eaad9432348941257cad8d",
    ),
    ("cartpole", "test"): (
        "4ff9714ca3fd45c1b4fb4389c1b30d4331385a04fccdccf466d48169682a0955",
        "f35ce6bb379da8f6f5d331686d79bcfb6d7212ca7fa011ba006391be0951d03a",
    ),
    ("cartpole", "ood"): (
        "75703db18590222791897c34ec332c2f8ca26a0550a494fc2c8612d16dc868eb",
        "65e41c00197cd9ace6bc2db5aef53084b3a68632e6eafbe72bf2561b956bfe7d",
    ),
    ("grasp", "train"): (
        "f84baf7fab007420ecfe1b6ca376022f4d90f242caf9cb076d83f047b998af5d",
        "3ab2fa773daefed9e39f61b26db4480615fc4764538003fbbae2d2a3fa4d0928",
    ),
    ("grasp", "test"): (
        "ac0943385fab71a5d3e65f43fe70859274bbaf8f3b04f95be8a509ce71195b04",
        "a250794e41e2db03d8bcb58fe32e819979230799a0db87fd783198b9eba2d433",
    ),
    ("grasp", "ood"): (
        "216cf3c6e07bbc15121ef0aa13e0bca2620156e11672f22040e56fe17d9c4fd1",
        "8e9ce52ae1c8a8e355ef30562564d3ae5c253c5c41d5b454e9b0494077b1446c",
    ),
    ("grasp-v1", "train"): (
        "8e758a6f82017c503e2124a83906ce1c98db4ccf2300332dfeb667336760155d",
        "bf27da3f9884d8fd9af0a74bc516183a428f60353104c74bcbddf0cfaadf5afe",
    ),
    ("grasp-v1", "test"): (
        "8734c2d375ff24129a1a2f288ffc0fe9dd675bf26ae87578f6682a49e0b44fc3",
        "e9ae2984132aea79195252e41635bcb00e63652861fafba3769772825711f691",
    ),
    ("grasp-v1", "ood"): (
        "ec3414c3b18945ec1fc885ffbcdba5bea9cf18faf4c9886f6ae7918a7066b3e4",
        "5d5eeb22426599857f3ccf77d5bc0c9acc0d96bc934e9501f24d373c00692cf9",
    ),
    ("grasp-v2", "train"): (
        "06fbe910aa032651f6578b3a6c203889a27eb1286ed78b51dffb3c85d3bcd103",
        "45a420a40c3c5cba876fcb6909f61be408b8a3712916b056eb574a04acb1ebf3",
    ),
    ("grasp-v2", "test"): (
        "bd8d12632cc59ea85d1a83fbd293b604eb9097af071c67f0415b8518152eebcb",
        "8016a2e8739e45a8b8be0be32d613422bdadc5fa3347b0d2082c45a9c21eb746",
    ),
    ("grasp-v2", "ood"): (
        "f72508bf5716adf2498c35707c61107cc505acd35fbbbe4f72ec8ce69e1a3124",
        "7d560f58521197f7ccc282b15ff4b0c94c24caeb5bb17905351205175d46b66d",
    ),
    ("navigate", "train"): (
        "94616b4ba0d324a6da26a95c903c366254e60cdf3279bc2077ac713526ba964a",
        "998f2e13ff41ec64ad1f187e66f3debd95d28fdb451656a3d1b25cfbe7d54b84",
    ),
    ("navigate", "test"): (
        "4e69eb65b442c327951de02336b719ea08e67a225ab7a27a6cbaa2d06581ab82",
        "904ac0bf45e0858f9e0dfb6f5e09500a54c42d03e8a8822ed5fe74af69bae55c",
    ),
    ("navigate", "ood"): (
        "a89f731110bbf7afccbcd2db6a423bb639ed81ad2e78e221f8e42390914eb65d",
        "f266bb69e71d4c387329856be5a0712fc97d0e0c0d1c535067db7db669ccaa32",
    ),
    ("navigate-v1", "train"): (
        "f656ae53f2ec1a4e66bcf7743746a7f2fc02b33ff9e21e171d53d742665d60a7",
        "a3544aba4804ecceeabb782649c7999f517e844f31518e76951fba017fa39a92",
    ),
    ("navigate-v1", "test"): (
        "cf9c9e4d8ee3b77d83fe1d91075868f72a869a2751018306639e631a31a9b225",
        "2974c0e036f661570d294d3a8aa4862b13cf2ad0e3aff770478795c4b8910274",
    ),
    ("navigate-v1", "ood"): (
        "6ed1940417c2e48acd9755e33fd1054891ed228142cae4495f6a7dced5057175",
        "f6231b34de9028e167f3f148723e5ff9bbec5b30394704fa174aa4ae85f1f878",
    ),
    ("reach", "train"): (
        "e03a0a13be2196be804abfa3b92339bbe526ea709a50cd62ced3986c499068cc",
        "f17399f160f324912b98be356644e2d5807aa95400841b5889506f338e2b287d",
    ),
    ("reach", "test"): (
        "c04ab84ef2c2bdde53629b2e31c86800fa1155479cf8ab88aec9d67e7581a2af",
        "da640f171347f2ec6e7b972fbe82c8567884f6203e557e07f33adc401f028f19",
    ),
    ("reach", "ood"): (
        "0baa93554007af5d562cd8627211d74764a1b0860c2bb47cf59e0c64ededd89d",
        "361494788be2aa239aa206e22461ca962354beffa66aa8a5a89db9f7bcc1d0c3",
    ),
    ("reach-v1", "train"): (
        "0e86f485889910a929d3f035a65307c57dc3fc7842b0af6436a1e10752279bb9",
        "0ce8f87d3bf716619df4c3187639dcca440ff0f1afdcee942daf7053b2bbcf1b",
    ),
    ("reach-v1", "test"): (
        "8f5c84ad24e32e4e8870f270e7427c86a6cb6d6fc31ef44eb4d4b349f6d28fca",
        "def161d0ed561479df245d113082f38d4cfff6ad516fa80904b81f498d06c859",
    ),
    ("reach-v1", "ood"): (
        "965b329d2c650576086f640a770a43b0d841930da8c22e133fc7affadbe52711",
        "07fd943daca0f97d7c8882afc8e22ab10ec5e06d67bed0515769c7b85297adf1",
    ),
    ("reach-v2", "train"): (
        "4052cfc119bcd915cbf3112d58585c72c2bb1c76a34e61c92b64fddfaadedd66",
        "7a463bab8db482ce0d43bfa1fcec384932f440bab43f66f8287a633ec8d41dba",
    ),
    ("reach-v2", "test"): (
        "7d231cf650e6723e74ea85c14fb5dba315f0792b7ea52d512eb27804282e3d27",
        "5f85641a327510fd14982b468fb9b9ca319d6345bb6f00a3223ee800c365d973",
    ),
    ("reach-v2", "ood"): (
        "9360480e4fa2a66a93973c7aebe0267b680b66db7a3915d376a1fb81dc6167e7",
        "035038c95bac5d5ad61db78331888b77a8b1d3d078b4900f73ae9bc9ff8fc5d8",
    ),
}


def task_hash(family: str, split: str) -> str:
    fam = metarobot.get_family(family)
    tasks = list(fam.heldout_tasks(split, 100))
    for seed in SEEDS:
        tasks += fam.sample_tasks(20, split, np.random.default_rng(seed))
    return hashlib.sha256("\n".join(t.digest() for t in tasks).encode()).hexdigest()


def hidden_hash(family: str, split: str) -> str:
    fam = metarobot.get_family(family)
    values = np.stack([fam.hidden_params(t) for t in fam.heldout_tasks(split, 100)]).astype(np.float32)
    return hashlib.sha256(values.tobytes()).hexdigest()


@pytest.mark.parametrize(("family", "split"), sorted(PINNED))
def test_generated_tasks_are_unchanged(family, split):
    assert task_hash(family, split) == PINNED[family, split][0]


@pytest.mark.parametrize(("family", "split"), sorted(PINNED))
def test_hidden_parameters_are_unchanged(family, split):
    assert hidden_hash(family, split) == PINNED[family, split][1]


def test_every_family_is_pinned():
    assert {name for name, _ in PINNED} == set(_BUILTIN)
