"""The registry: lookup, close-match errors, double registration."""

from __future__ import annotations

import pytest

from infobench import registry
from infobench.errors import RegistryError


def test_builtin_plugins_are_registered():
    assert "calibration" in registry.names("task")
    assert {"digits", "digits-c", "mnist1d"} <= set(registry.names("dataset"))
    assert {"linear", "mlp", "cnn1d", "cnn2d", "resnet"} <= set(registry.names("model"))


def test_unknown_name_lists_close_matches():
    with pytest.raises(RegistryError) as info:
        registry.get("model", "mpl")
    assert "did you mean 'mlp'" in str(info.value)
    assert "known:" in str(info.value)


def test_a_name_cannot_be_taken_twice():
    @registry.register("test.kind", "thing")
    class A:
        pass

    with pytest.raises(ValueError, match="registered twice"):

        @registry.register("test.kind", "thing")
        class B:
            pass


def test_describe_is_the_first_docstring_line():
    cls = registry.get("calibration.method", "temperature")
    assert registry.describe(cls).startswith("Temperature scaling")


def test_lookups_import_only_the_module_that_defines_the_name():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from infobench import registry\n"
        "assert 'mlp' in registry.names('model')\n"
        "assert 'infobench.models.mlp' not in sys.modules\n"
        "registry.get('model', 'linear')\n"
        "print(sorted(m for m in sys.modules if m.startswith('infobench.models.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "infobench.models.linear" in out.stdout
    assert "infobench.models.resnet" not in out.stdout and "infobench.models.mlp'" not in out.stdout
