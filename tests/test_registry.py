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


def test_every_builtin_plugin_derives_from_the_base_its_kind_names():
    """``BASES`` is what a module:Class name is checked against: each entry must name a real class
    that infobench's own plug-ins of that kind derive from, else user classes would be judged by
    the wrong contract."""
    registry.load_plugins()
    assert set(registry.BASES) <= set(registry._REGISTRY)
    for kind in registry.BASES:
        base = registry.base_class(kind)
        assert isinstance(base, type), kind
        strays = [name for name, cls in registry.items(kind) if not issubclass(cls, base)]
        assert not strays, (kind, base, strays)


def test_a_kind_without_a_base_takes_any_class_by_path():
    assert registry.base_class("test.other-kind") is None
    cls = registry.get("test.other-kind", "string:Formatter")
    assert cls.registered_name == "string:Formatter"
    with pytest.raises(RegistryError, match="built-in type"):
        registry.get("test.other-kind", "collections:OrderedDict")


def test_unknown_names_suggest_a_module_class_name():
    with pytest.raises(RegistryError, match="module:Class"):
        registry.get("tta.method", "my_own_method")
