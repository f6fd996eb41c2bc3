"""Every example in a subcommand's ``--help`` epilog runs when pasted (issue 24).

The examples are read from ``redundancy SUB --help`` (continuation lines joined) and parsed by
``shlex`` as a shell would, so a line that is a shell syntax error (``widths=(8,16)`` unquoted) fails
here. They run in a scratch directory holding the user's modules and weight files they name
(``mypkg.models:make_net``, ``net.pt``, ...; see ``tests/cli/_examples.py``), with the quick
substitutions of ``_examples.QUICK`` (fewer epochs / models) and ``_examples.EXTRA`` (quick flags an
example does not set); everything else is as printed. Each must exit 0.
"""

import shlex
import subprocess

import pytest

from tests.cli._examples import SUBCOMMANDS, examples, quick, run_cli, scratch

pytestmark = pytest.mark.slow

CASES = [(sub, line) for sub in SUBCOMMANDS for line in examples(sub)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("examples")
    scratch(str(tmp))
    return tmp


def test_every_subcommand_has_examples():
    assert {sub for sub, _ in CASES} == set(SUBCOMMANDS)


@pytest.mark.parametrize("sub,line", CASES, ids=[f"{s}-{i}" for i, (s, _) in enumerate(CASES)])
def test_help_example_runs_when_pasted(sub, line, workdir):
    # bash itself must accept the line (no syntax errors such as an unquoted "(")
    assert subprocess.run(["bash", "-n", "-c", line]).returncode == 0, line
    argv = quick(sub, line)
    r = run_cli(argv, workdir, timeout=600)
    assert r.returncode == 0, f"{shlex.join(argv)}\n{r.stderr[-2000:]}"
