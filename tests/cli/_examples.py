"""Helpers for the CLI example and seed tests: the examples of every subcommand's ``--help``
epilog, a scratch directory holding the names they mention, and the quick substitutions."""

import os
import re
import shlex
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUBCOMMANDS = ("demo", "analyze", "roi", "simulate", "ranks", "scoreboard", "prune", "bayes", "longtail")

#: Quick variants, applied in order to each pasted example (the examples themselves are run as
#: written otherwise): fewer epochs, fewer models, the small test split only.
QUICK = [
    (r"--epochs \d+", "--epochs 1"),
    (r"--train-epochs \d+", "--train-epochs 1"),
    (r"--memorization-models \d+", "--memorization-models 2"),
    (r"--scores all", "--scores dof,numerical,evbmf,energy,l1"),
    # a narrow one-block-per-stage ResNet-20 where an example trains or searches the full one
    (r"^redundancy ranks resnet20 ", "redundancy ranks resnet20 --model-arg 'widths=(4,8,8)' "
                                     "--model-arg blocks_per_stage=1 "),
]
#: Appended per subcommand (quick flags the example does not set).
EXTRA = {
    "prune": ["--max-examples", "64", "--epochs", "1"],
    "bayes": ["--epochs", "2", "--n-train", "300"],
    "ranks": ["--iters", "4", "--warmup", "2"],
    "roi": [],
    "simulate": [],
}

#: The user's own modules that the examples name (mypkg.models:make_net, a.b:orig, ...), written into
#: the scratch directory with the weight files they load.
MODULES = {
    "mypkg/__init__.py": "",
    "mypkg/models.py": """
        from redundancy.zoo import small_cnn as _small
        def small_cnn(**kw):
            return _small(**kw)
        def make_net(**kw):
            return _small(widths=(4, 8), **kw)
        net = make_net
        def make_mlp(width=16):
            import torch.nn as nn
            return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))
        """,
    "mypkg/nets.py": """
        from redundancy.zoo.small import two_conv_cnn
        def ref(**kw):
            return two_conv_cnn((1, 8, 8), 10, 8)
        def small(**kw):
            return two_conv_cnn((1, 8, 8), 10, 4)
        """,
    "a/__init__.py": "",
    "a/b.py": """
        from redundancy.zoo import small_cnn
        def orig():
            return small_cnn(in_channels=3, widths=(8, 16))
        def comp():
            return small_cnn(in_channels=3, widths=(4, 8))
        """,
}
#: weight files: name -> (module:factory, kwargs)
WEIGHTS = {"net.pt": "mypkg.models:make_net", "ref.pt": "mypkg.nets:ref", "small.pt": "mypkg.nets:small"}


def examples(sub):
    """The example command lines of ``redundancy SUB --help`` (continuation lines joined)."""
    out = run_cli([sub, "--help"], ROOT).stdout
    text = out.split("examples:", 1)[1] if "examples:" in out else ""
    text = text.replace("\\\n", " ")
    return [" ".join(line.split()) for line in text.splitlines() if line.strip().startswith("redundancy ")]


def quick(sub, line):
    for pat, rep in QUICK:
        line = re.sub(pat, rep, line)
    argv = shlex.split(line)[1:]
    for i in range(0, len(EXTRA.get(sub, [])), 2):
        flag, val = EXTRA[sub][i:i + 2]
        if flag not in argv:
            argv += [flag, val]
    return argv


def run_cli(argv, cwd, timeout=300):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, str(cwd)]), "PYTHONHASHSEED": "0",
           "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "redundancy", *argv, *([] if "--help" in argv else [])],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def scratch(tmp):
    """Write the example modules and weight files into ``tmp``."""
    for rel, src in MODULES.items():
        path = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(textwrap.dedent(src))
    code = "; ".join(f"import torch, importlib; m = importlib.import_module('{spec.split(':')[0]}'); "
                     f"torch.save(getattr(m, '{spec.split(':')[1]}')().state_dict(), '{name}')"
                     for name, spec in WEIGHTS.items())
    subprocess.run([sys.executable, "-c", code], cwd=tmp, check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, str(tmp)])})
