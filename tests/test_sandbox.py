"""The sandbox (autograder/sandbox/, and autograder/in_sandbox/ which is copied into it): only
that folder enters the sandbox, and it imports nothing of the grader; the wire format carries only
data and rejects anything malformed; a submission's code runs in a separate, limited,
unprivileged process; a hang, crash, exit or memory bomb fails that call, and the next call
gets a fresh worker."""

from __future__ import annotations

import ast
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch

from autograder import sandbox
from autograder.extract import Statement, statements_payload
from autograder.in_sandbox import protocol
from autograder.sandbox.isolation import PROJECT_ROOT
from autograder.sandbox.output import OUTPUT_HEAD, OUTPUT_TAIL, OutputCapture
from autograder.sandbox.zygote import INSIDE, PACKAGE, prepare_package

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox user and namespaces need root")


# ======================================================================================
# Wire format
# ======================================================================================
def roundtrip(value):
    tree, payload = protocol.encode(value)
    return protocol.decode(json.loads(json.dumps(tree)), payload)


def test_values_roundtrip():
    value = {
        "a": [1, 2.5, float("nan"), None, True, "s"],
        "t": (torch.arange(6).reshape(2, 3), torch.ones(0)),
        "f": torch.tensor(1.5, dtype=torch.float64),
        "b": torch.tensor([True, False]),
        "h": torch.tensor([1.0], dtype=torch.bfloat16),
    }
    back = roundtrip(value)
    assert back["a"][:2] == [1, 2.5] and back["a"][2] != back["a"][2] and back["a"][3:] == [None, True, "s"]
    assert isinstance(back["t"], tuple) and torch.equal(back["t"][0], value["t"][0]) and back["t"][1].shape == (0,)
    assert back["f"].dtype == torch.float64 and back["f"].item() == 1.5
    assert back["b"].tolist() == [True, False] and back["h"].dtype == torch.bfloat16


def test_tensor_subclasses_arrive_as_plain_tensors_with_their_data():
    class AlwaysEqual(torch.Tensor):
        def __eq__(self, other):
            return True

    sent = torch.zeros(3).as_subclass(AlwaysEqual)
    back = roundtrip(sent)
    assert type(back) is torch.Tensor and not torch.equal(back, torch.ones(3))


def test_other_objects_are_described_never_serialised():
    class Payload:
        reduced = False

        def __reduce__(self):
            Payload.reduced = True
            return (os.system, ("true",))

    back = roundtrip([Payload(), {1: "non-string key"}, lambda: 0])
    assert [type(v) for v in back] == [protocol.Unsupported] * 3
    assert "Payload" in back[0].type_name and not Payload.reduced


def tensor_header(**overrides):
    body = {"dtype": "float32", "shape": [2], "offset": 0, "nbytes": 8, **overrides}
    return {"$tensor": body}


@pytest.mark.parametrize(
    "tree, payload",
    [
        ({"$tensor": {"dtype": "object", "shape": [1], "offset": 0, "nbytes": 8}}, b"\0" * 8),
        (tensor_header(shape=[3]), b"\0" * 8),  # shape does not match the bytes
        (tensor_header(offset=4), b"\0" * 8),  # outside the payload
        (tensor_header(shape=[-1]), b"\0" * 8),
        (tensor_header(shape=[1] * 9, nbytes=4), b"\0" * 8),
        ({"$pickle": "gASV"}, b""),
        ({"$list": [1], "$tuple": [2]}, b""),
        ({"$float": "1e999"}, b""),
        ({"$dict": [[1, 2]]}, b""),
        ("x" * (protocol.MAX_STRING + 1), b""),
    ],
)
def test_decode_rejects_malformed_values(tree, payload):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(tree, payload)


def test_decode_rejects_deep_nesting():
    tree = 1
    for _ in range(protocol.MAX_DEPTH + 5):
        tree = {"$list": [tree]}
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(tree, b"")


@pytest.mark.parametrize(
    "header",
    [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e999}', b"[" * 100000, b"\xff", b'{"a": ' + b"9" * 100 + b"}"],
)
def test_headers_are_strict_json(header):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_header(header)


def test_frame_reader_enforces_magic_and_caps():
    good = protocol.pack_message({"kind": "result"}, torch.ones(4))
    reader = protocol.FrameReader(max_header=1 << 16, max_payload=1 << 16)
    for i in range(0, len(good), 7):  # arrives in pieces
        reader.feed(good[i : i + 7])
    header, payload = reader.frames[0]
    assert torch.equal(protocol.decode(header["value"], payload), torch.ones(4))
    with pytest.raises(protocol.ProtocolError, match="magic"):
        protocol.FrameReader(1 << 16, 1 << 16).feed(b"JUNK" + b"\0" * 20)
    with pytest.raises(protocol.ProtocolError, match="too large"):
        protocol.FrameReader(1 << 16, 1 << 16).feed(struct.pack("<4sIQ", b"SSLG", 10, 1 << 40))


# ======================================================================================
# Output capture
# ======================================================================================
def test_output_capture_splits_calls_and_truncates():
    capture = OutputCapture("abc")
    marker = b"\x00SSLG-END:abc:1\x00"
    data = b"hello " * 5000 + b"\x00SSLG-END:zzz:1\x00 forged " + marker + b"next call"
    for i in range(0, len(data), 1000):
        capture.feed(data[i : i + 1000])
    assert capture.ended == [1]
    text = capture.take()
    assert text.startswith("hello") and "bytes of output omitted" in text and "forged" in text
    assert len(text) < OUTPUT_HEAD + OUTPUT_TAIL + 100
    assert capture.take(flush=True) == "next call"


# ======================================================================================
# The trust boundary: what is copied into the sandbox
# ======================================================================================
#: What the code inside the sandbox may import besides the standard library and its own folder.
INSIDE_MAY_IMPORT = {"torch", "landlock", "pyseccomp"}


def foreign_imports(folder: Path) -> list[str]:
    """The imports of `folder`'s modules that are neither the standard library, nor
    `INSIDE_MAY_IMPORT`, nor a module of the folder itself (anywhere in a module: a function's
    lazy import counts too)."""
    siblings = {path.stem for path in folder.glob("*.py")}
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.ImportFrom):  # relative: only `from . import sibling` or `from .sibling import x`
                inside = node.level == 1 and (
                    node.module.split(".")[0] in siblings
                    if node.module
                    else all(alias.name in siblings for alias in node.names)
                )
                modules = [] if inside else ["." * node.level + (node.module or ",".join(a.name for a in node.names))]
                found += [f"{path.name} line {node.lineno}: {m}" for m in modules]
                continue
            else:
                continue
            found += [
                f"{path.name} line {node.lineno}: {m}"
                for m in modules
                if m.split(".")[0] not in sys.stdlib_module_names | INSIDE_MAY_IMPORT
            ]
    return found


def test_the_code_inside_the_sandbox_imports_nothing_of_the_grader():
    """Everything in autograder/in_sandbox/ runs next to the student's code: it may import the
    standard library, torch, the confinement bindings and its own modules, nothing else."""
    assert sorted(p.name for p in INSIDE.glob("*.py")) == [
        "__init__.py",
        "confine.py",
        "harness.py",
        "protocol.py",
        "standins.py",
        "statements.py",
        "worker.py",
    ]
    assert foreign_imports(INSIDE) == []


def test_foreign_imports_are_found(tmp_path):
    """The check above fails on each way the grader could leak in."""
    (tmp_path / "sibling.py").write_text("import os, json\nfrom collections import abc\n")
    (tmp_path / "leaky.py").write_text(
        "from __future__ import annotations\nimport torch.nn\nfrom . import sibling\nfrom .sibling import x\n"
        "import numpy\nfrom autograder import safe_files\nfrom .. import grading\nfrom . import extract\n"
        "from .extract import TASK_NAMES\n\ndef later():\n    import helpers.data\n"
    )
    assert foreign_imports(tmp_path) == [
        "leaky.py line 5: numpy",
        "leaky.py line 6: autograder",
        "leaky.py line 7: ..grading",
        "leaky.py line 8: .extract",
        "leaky.py line 9: .extract",
        "leaky.py line 12: helpers.data",
    ]


def test_the_sandbox_gets_a_copy_of_that_folder_which_imports_alone(tmp_path):
    """The sandbox's package is the folder, whole and nothing more, and each of its modules
    imports there without the rest of the autograder (in an isolated interpreter)."""
    pkg = prepare_package(tmp_path)
    copied = sorted(str(p.relative_to(pkg / PACKAGE)) for p in (pkg / PACKAGE).rglob("*"))
    assert copied == sorted(
        str(p.relative_to(INSIDE)) for p in INSIDE.rglob("*") if "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    assert sorted(p.name for p in pkg.iterdir()) == ["helpers", PACKAGE]
    modules = sorted(p.stem for p in INSIDE.glob("*.py") if p.stem != "__init__")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
        f"for name in {modules!r}: importlib.import_module({PACKAGE!r} + '.' + name)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('autograder', 'helpers')], sorted(sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-B", "-c", code, str(pkg)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    shutil.rmtree(pkg)


# ======================================================================================
# The worker
# ======================================================================================
SOURCE = """
import os, sys, signal, subprocess, time
import torch

def add(a, b):
    print("adding", a.shape)
    return a + b

def todo(*args):
    raise NotImplementedError()

def hang(*args):
    while True:
        pass

def crash(*args):
    import ctypes
    ctypes.string_at(0)

def leave_exit(*args):
    os._exit(7)

def polite_exit(*args):
    sys.exit(2)

def bomb(*args):
    return len(bytearray(10 ** 11))

def whoami(*args):
    return [os.getuid(), os.getgid(), os.getgroups()]

def read(path):
    with open(path) as handle:
        return handle.read(100)

def connect(*args):
    import socket
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    return "connected"

def spawn(*args):
    subprocess.Popen(["sleep", "4242"], start_new_session=True)
    return os.getpid()

def signal_parent(*args):
    for pid in (os.getppid(), 1):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return "sent"

class Broken:
    x = 1 / 0

def uses_broken(*args):
    return Broken
"""
NAMES = [
    "os",
    "torch",
    "add",
    "todo",
    "hang",
    "crash",
    "leave_exit",
    "polite_exit",
    "bomb",
    "whoami",
    "read",
    "connect",
    "spawn",
    "signal_parent",
    "Broken",
    "uses_broken",
]


def statements():
    import ast

    body = ast.parse(SOURCE).body
    result = []
    for node_index, node in enumerate(body):
        names = (
            tuple(a.asname or a.name.split(".")[0] for a in node.names)
            if isinstance(node, ast.Import)
            else (node.name,)
        )
        result.append(
            Statement(
                index=node_index,
                cell=0,
                label="cell 1",
                cell_source=SOURCE,
                node=node_index,
                lineno=node.lineno,
                names=names,
            )
        )
    return statements_payload(result)


@pytest.fixture(scope="module")
def worker():
    isolation = sandbox.detect_isolation()
    limits = sandbox.Limits(call_timeout=3, memory_mb=512)
    zygote = sandbox.Zygote(isolation, limits, preload=("torch",))
    worker = sandbox.Worker(zygote, statements(), limits)
    yield worker
    worker.close()
    zygote.close()


def call(worker, fn, *args):
    return worker.run("call", {"fn": fn, "args": list(args), "kwargs": {}})["returned"]


def test_calls_return_data_and_capture_output(worker):
    assert torch.equal(call(worker, "add", torch.ones(2), torch.ones(2)), torch.full((2,), 2.0))
    assert worker.take_output() == "adding torch.Size([2])\n"


def test_not_implemented_and_missing_names(worker):
    with pytest.raises(sandbox.NotImplementedYet, match="not implemented yet: `todo`"):
        call(worker, "todo")
    with pytest.raises(sandbox.MissingDefinition, match="`nothing` is not defined"):
        call(worker, "nothing")


def test_definition_errors_are_reported_with_the_name(worker):
    with pytest.raises(sandbox.MissingDefinition, match="ZeroDivisionError"):
        call(worker, "Broken")


@pytest.mark.parametrize(
    "fn, fault, message",
    [
        ("hang", sandbox.CallTimedOut, "did not finish within 3 seconds"),
        ("crash", sandbox.WorkerDied, "SIGSEGV"),
        ("leave_exit", sandbox.WorkerDied, "exited with status 7"),
        ("polite_exit", sandbox.CodeRaised, r"sys.exit\(2\)"),
        ("bomb", sandbox.CodeRaised, "MemoryError"),
    ],
)
def test_failures_fail_the_call_and_the_next_call_works(worker, fn, fault, message):
    with pytest.raises(fault, match=message):
        call(worker, fn)
    assert torch.equal(call(worker, "add", torch.ones(1), torch.ones(1)), torch.full((1,), 2.0))


def test_leftover_processes_are_killed_at_restart_and_close(worker):
    call(worker, "spawn")
    assert any("4242" in " ".join(p.cmdline()) for p in worker.zygote.sandbox_processes())
    with pytest.raises(sandbox.WorkerDied):
        call(worker, "crash")
    call(worker, "add", torch.ones(1), torch.ones(1))  # restart: the zygote killed the leftovers
    assert not any("4242" in " ".join(p.cmdline()) for p in worker.zygote.sandbox_processes())


def test_signalling_the_parent_or_init_does_nothing(worker):
    assert call(worker, "signal_parent") == "sent"
    assert worker.zygote.alive()
    assert torch.equal(call(worker, "add", torch.ones(1), torch.ones(1)), torch.full((1,), 2.0))


@needs_root
def test_runs_as_an_unprivileged_user_without_groups(worker):
    uid, gid, groups = call(worker, "whoami")
    assert uid != 0 and gid != 0 and groups == []


@needs_root
def test_cannot_read_the_project(worker):
    for path in ("solutions/ssl_methods.ipynb", "autograder/grading.py", "tests/submissions/variants.py"):
        with pytest.raises(sandbox.CodeRaised, match="(FileNotFoundError|PermissionError)"):
            call(worker, "read", str(PROJECT_ROOT / path))


@needs_root
def test_no_network_in_namespace_mode(worker):
    if worker.zygote.isolation.mode != "namespace":
        pytest.skip("namespaces (unshare) are not available here: no network isolation")
    with pytest.raises(sandbox.CodeRaised, match="(OSError|unreachable)"):
        call(worker, "connect")


def test_isolation_is_described_once():
    isolation = sandbox.detect_isolation()
    assert sandbox.detect_isolation() is isolation
    summary = isolation.summary()
    assert summary.startswith("sandbox:")
    if os.geteuid() == 0:
        assert isolation.mode in ("namespace", "uid") and isolation.user
    else:
        assert isolation.mode == "process" and "as you" in summary


def test_closing_kills_every_sandbox_process():
    isolation = sandbox.detect_isolation()
    limits = sandbox.Limits(call_timeout=3, memory_mb=256)
    zygote = sandbox.Zygote(isolation, limits, preload=())
    worker = sandbox.Worker(zygote, statements(), limits)
    call(worker, "spawn")
    processes = [psutil.Process(zygote.process.pid), *zygote.sandbox_processes()]
    worker.close()
    zygote.close()
    gone, alive = psutil.wait_procs(processes, timeout=5)
    assert not alive
    assert not zygote.workdir.exists()


# ======================================================================================
# Limits that a submission cannot stretch (issue classes: progress frames, callback time,
# budget, state between calls, a dead zygote)
# ======================================================================================
EXTRA_SOURCE = """
import os
import time

def remember(value):
    global REMEMBERED
    REMEMBERED = value
    return value

def recall():
    return REMEMBERED

def ask_many(count):
    import gc
    child = next(o for o in gc.get_objects() if type(o).__name__ == "Child" and hasattr(o, "callback"))
    for _ in range(count):
        child.callback("loss", {})
    return count

def nap(seconds):
    time.sleep(seconds)
    return seconds

def flood():  # its end marker without the end, then megabytes of output for 30 s
    import gc
    child = next(o for o in gc.get_objects() if type(o).__name__ == "Child" and hasattr(o, "marker"))
    os.write(1, child.marker)
    chunk = b"A" * (1 << 20)
    started = time.monotonic()
    while time.monotonic() - started < 30:
        os.write(1, chunk)
    return 0

def huge():
    import torch
    return torch.ones(9_000_000)  # 36 MB: over the cap on one answer

class Spinner:
    import gc as _gc
    _child = next(o for o in _gc.get_objects() if type(o).__name__ == "Child" and hasattr(o, "send"))
    while True:  # keeps telling the grader it is still loading
        _child.send({"kind": "loading", "seq": _child.seq, "index": 5})
        time.sleep(0.2)
"""


def extra_statements():
    import ast

    body = ast.parse(EXTRA_SOURCE).body
    result = []
    for node_index, node in enumerate(body):
        names = tuple(a.asname or a.name for a in node.names) if isinstance(node, ast.Import) else (node.name,)
        result.append(
            Statement(
                index=node_index,
                cell=0,
                label="cell 9",
                cell_source=EXTRA_SOURCE,
                node=node_index,
                lineno=node.lineno,
                names=names,
            )
        )
    return statements_payload(result)


@pytest.fixture()
def strict_worker():
    isolation = sandbox.detect_isolation()
    limits = sandbox.Limits(call_timeout=2, load_timeout=1.5, load_total=4, memory_mb=512, budget_s=12)
    zygote = sandbox.Zygote(isolation, limits, preload=("torch",))
    worker = sandbox.Worker(
        zygote, extra_statements(), limits, restart_zygote=lambda: sandbox.Zygote(isolation, limits, preload=("torch",))
    )
    yield worker
    worker.close()
    worker.zygote.close()
    zygote.close()


def test_progress_frames_cannot_keep_a_statement_loading(strict_worker):
    import time

    started = time.monotonic()
    assert call(strict_worker, "nap", 0) == 0
    assert time.monotonic() - started < 20
    assert "Spinner" in strict_worker.load_report.errors


def test_every_call_gets_a_fresh_worker(strict_worker):
    assert call(strict_worker, "remember", 42) == 42
    with pytest.raises(sandbox.CodeRaised, match="NameError"):
        call(strict_worker, "recall")


def test_time_spent_answering_callbacks_counts(strict_worker):
    import time

    def slow_answer(_):
        time.sleep(0.5)
        return {}

    assert call(strict_worker, "nap", 0) == 0  # started and loaded (the Spinner skipped)
    used = strict_worker.budget.used
    with pytest.raises(sandbox.CallTimedOut):
        strict_worker.run("call", {"fn": "ask_many", "args": [20], "kwargs": {}}, callbacks={"loss": slow_answer})
    assert strict_worker.budget.used - used < 2 + 1.5  # 20 answers of 0.5 s would be 10 s


def test_the_budget_ends_slow_calls_and_then_every_call(strict_worker):
    import time

    for _ in range(8):
        try:
            call(strict_worker, "nap", 1.9)
        except sandbox.BudgetExhausted:
            break
    else:
        pytest.fail("the budget never ran out")
    started = time.monotonic()
    with pytest.raises(sandbox.BudgetExhausted, match="time budget"):
        call(strict_worker, "nap", 0)
    assert time.monotonic() - started < 1
    assert strict_worker.budget.used <= 12 + 2.5


def test_a_dead_zygote_is_replaced_for_the_next_call(strict_worker):
    assert call(strict_worker, "nap", 0) == 0
    old = strict_worker.zygote
    old.process.kill()
    old.process.wait()
    try:  # a call that meets the dying zygote fails, as the submission's fault (never the grader's)
        call(strict_worker, "nap", 0)
    except sandbox.SubmissionFault:
        pass
    assert call(strict_worker, "nap", 0) == 0
    assert strict_worker.zygote is not old


def test_the_probe_refuses_a_worker_that_can_read_a_secret(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("answer")
    tmp_path.chmod(0o755)
    secret.chmod(0o644)
    isolation = sandbox.Isolation("unconfined") if os.geteuid() else sandbox.detect_isolation()
    limits = sandbox.Limits(call_timeout=3, memory_mb=256)
    zygote = sandbox.Zygote(isolation, limits, preload=("torch",))
    try:
        # A path the worker can read on purpose (its own package) stands in for a leaked secret.
        own = str(zygote.workdir / "pkg")
        worker = sandbox.Worker(zygote, statements(), limits, secrets={"read": [str(secret), own], "write": []})
        if isolation.mode == "unconfined":
            assert call(worker, "add", torch.ones(1), torch.ones(1)).item() == 2
        else:
            with pytest.raises(sandbox.SandboxError, match=f"could read {own}"):
                call(worker, "add", torch.ones(1), torch.ones(1))
        worker.close()
    finally:
        zygote.close()


def test_an_answer_over_the_cap_is_refused_before_it_is_read_whole(strict_worker):
    with pytest.raises(sandbox.BadAnswer, match="could not be read"):
        call(strict_worker, "huge")
    assert call(strict_worker, "nap", 0) == 0


def test_an_output_flood_behind_a_fake_marker_still_stops_at_the_call_limit(strict_worker):
    assert call(strict_worker, "nap", 0) == 0
    used = strict_worker.budget.used
    with pytest.raises(sandbox.CallTimedOut):
        call(strict_worker, "flood")
    assert strict_worker.budget.used - used < 2 + 2
    assert len(strict_worker.take_output()) < 5000
