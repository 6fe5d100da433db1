import subprocess
import sys

import gitml


def test_exported_members():
    exported = {name for name in dir(gitml) if not name.startswith("_")} | {"__version__"}
    assert set(gitml.__all__) == exported
    for name in gitml.__all__:
        assert getattr(gitml, name) is not None


def test_import_is_light():
    heavy = (
        "pandas",
        "pyarrow",
        "pygit2",
        "dvc",
        "sklearn",
        "jsonschema",
        "numpy",
        "joblib",
        "detect_secrets",
        "picklescan",
    )
    code = f"import sys, gitml, gitml.cli.main; print([m for m in {heavy} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
