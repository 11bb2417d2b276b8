"""Packages that hand out their public names on first use (``mooring._exports``)."""

from __future__ import annotations

import importlib

import pytest

# The packages whose names are imported on first use: the top-level API (beside its errors
# and version, imported at once) and the serving layer.
LAZY_PACKAGES = ("mooring", "mooring.serving")


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_a_lazy_package_hands_out_each_name_from_its_module(name: str) -> None:
    package = importlib.import_module(name)
    exports = package._EXPORTS
    assert set(exports) <= set(package.__all__)
    for public in exports:
        value = getattr(package, public)
        assert getattr(importlib.import_module(exports[public]), public) is value, public
        assert vars(package)[public] is value  # kept: the next read is a plain lookup
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match=rf"'{name}' has no attribute 'nothing'"):
        _ = package.nothing
