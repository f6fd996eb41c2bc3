"""The public namespace: every exported name resolves to the advertised object."""


def test_lazy_exports_are_the_functions_even_after_submodule_import():
    import importlib

    import redundancy

    for name, (module, attr) in redundancy._LAZY.items():
        importlib.import_module(f"redundancy.{module}")
        value = getattr(redundancy, name)
        if attr is None:
            assert value is importlib.import_module(f"redundancy.{module}")
        else:
            assert value is getattr(importlib.import_module(f"redundancy.{module}"), attr), name


def test_all_names_exist_and_import_is_light():
    import subprocess
    import sys

    code = ("import sys, redundancy; missing = [n for n in redundancy.__all__ if n not in dir(redundancy)]; "
            "assert not missing, missing; "
            "assert 'tensorly' not in sys.modules and 'matplotlib.pyplot' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
