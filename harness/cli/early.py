"""What ``bench`` does before its own imports: start parsing the input files of ``bench eval`` on COCO files.

``bench eval --task detection|instance|keypoints --gt G --pred P`` is a whole-process race: interpreter start
and imports (click, numpy, rich, the evaluator: ~0.1 s on one core) come before the first byte of the files is
read, while the other core idles.  The compiled parsers (``harness.metrics.coco._ckernels``) need neither numpy
nor the GIL, so ``harness.cli`` calls ``prefetch_eval_files`` before importing anything else, and the files are
read and parsed on two threads while the imports run; the evaluator then takes the parse
(``harness.io.prefetch``) instead of reading the file again.

Nothing here decides anything: the command line is still parsed by click, and the evaluator uses a prefetched
parse only for the very path it was asked to read, unchanged since (``prefetch.take``); a wrong guess here
(an option value that looks like ``--gt``, a file that changes) only costs the wasted read.  Standard library
only, and the extension is loaded from its file so that the package ``harness.metrics.coco`` (numpy) is not.
"""
from __future__ import annotations

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from harness.io import prefetch

#: the COCO file-evaluation tasks and their default iou types (``harness.file_eval.coco_results`` checks this
#: table against its own in a test)
COCO_TASKS = {"detection": "bbox", "instance": "segm", "keypoints": "keypoints"}
#: prefetch kinds: ``_ckernels.parse_results`` output, and ``parse_ground_truth`` output with span texts
RESULTS, GROUND_TRUTH = "coco-results", "coco-ground-truth"
_EXTENSION = "harness.metrics.coco._ckernels"
_WANTED = ("--task", "--gt", "--pred", "--iou-type")


def invoked_as_cli(argv: Sequence[str], orig_argv: Sequence[str] | None = None) -> bool:
    """Whether this process is the ``bench`` command itself: ``python -m harness.cli`` (while the package is
    imported, ``sys.argv[0]`` is ``-m``, and the interpreter's own command line names the module) or the ``bench``
    console script."""
    if not argv:
        return False
    if argv[0] == "-m":
        return _module_run(sys.orig_argv if orig_argv is None else orig_argv) == "harness.cli"
    return os.path.basename(argv[0]) == "bench"


def _module_run(orig_argv: Sequence[str]) -> str | None:
    """The module of ``python ... -m MODULE ...`` (or ``-mMODULE``), None without ``-m``."""
    for i, token in enumerate(orig_argv[1:], start=1):
        if token == "-m":
            return orig_argv[i + 1] if i + 1 < len(orig_argv) else None
        if token.startswith("-m"):
            return token[2:]
    return None


def eval_files(args: Sequence[str]) -> tuple[str, str, str, str] | None:
    """(task, iou type, ground truth, results) of ``eval`` arguments (``sys.argv[1:]``) naming a COCO task with
    ``--gt`` and ``--pred``, else None.  Reads options as click does (``--opt value`` or ``--opt=value``, the
    last one wins, nothing after ``--``), but only guesses: click parses them again."""
    if not args or args[0] != "eval":
        return None
    found: dict[str, str] = {}
    i = 1
    while i < len(args):
        token = args[i]
        if token == "--":
            break
        name, equals, value = token.partition("=")
        if name in _WANTED:
            if not equals:
                if i + 1 >= len(args):
                    break
                value = args[i + 1]
                i += 1
            found[name] = value
        i += 1
    task = found.get("--task")
    if task not in COCO_TASKS or not found.get("--gt") or not found.get("--pred"):
        return None
    return task, found.get("--iou-type") or COCO_TASKS[task], found["--gt"], found["--pred"]


def compiled_kernels() -> ModuleType | None:
    """``harness.metrics.coco._ckernels`` loaded from its file (registered under its name, so the evaluator's
    import finds it), or None when it is not built or ``BENCH_NO_CKERNELS`` switches it off."""
    if os.environ.get("BENCH_NO_CKERNELS", "") not in ("", "0"):
        return None
    loaded = sys.modules.get(_EXTENSION)
    if loaded is not None:
        return loaded
    folder = Path(__file__).resolve().parents[1] / "metrics" / "coco"
    for suffix in EXTENSION_SUFFIXES:
        path = folder / f"_ckernels{suffix}"
        if path.is_file():
            spec = spec_from_file_location(_EXTENSION, path, loader=ExtensionFileLoader(_EXTENSION, str(path)))
            if spec is None:
                return None
            try:
                module = module_from_spec(spec)
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            except ImportError:
                return None
            sys.modules[_EXTENSION] = module
            return module
    return None


def prefetch_eval_files(argv: Sequence[str]) -> bool:
    """Start reading and parsing the files of a ``bench eval`` on COCO files (``argv`` is ``sys.argv``); True
    when it did.  Mask ground truth is parsed with its segmentations (``parse_ground_truth(data, True)``)."""
    if not invoked_as_cli(argv):
        return False
    files = eval_files(argv[1:])
    if files is None:
        return False
    kernels = compiled_kernels()
    if kernels is None:
        return False
    _, iou_type, gt, pred = files
    if iou_type in ("bbox", "keypoints", "segm"):  # first: the evaluator takes the ground truth first
        parse = kernels.parse_ground_truth
        segm = iou_type == "segm"
        prefetch.start(GROUND_TRUTH, gt, lambda data: _ground_truth(parse, data, segm))
    prefetch.start(RESULTS, pred, kernels.parse_results)
    return True


def _ground_truth(parse: Any, data: bytes, segm: bool = False) -> Any:
    """``_ckernels.parse_ground_truth`` with each top-level span's text cut out (and with ``segm``, each RLE
    object's), so the file's bytes can go (``kernels.ground_truth_from_raw`` takes this form)."""
    parsed = parse(data, True) if segm else parse(data)  # boxes: the one-argument call of any build
    if parsed is None:
        return None
    count, columns, present, kp_len, spans = parsed[:5]
    out: tuple[Any, ...] = (count, columns, present, kp_len,
                            {key: data[start:stop] for key, (start, stop) in spans.items()})
    if segm:
        seen, coords, part_lengths, parts, objects = parsed[5]
        bounds = memoryview(objects).cast("q")  # (start, end) pairs, int64
        texts = [data[bounds[k]:bounds[k + 1]] for k in range(0, len(bounds), 2)]
        out += ((seen, coords, part_lengths, parts, texts),)
    return out


# ---------------------------------------------------------------------------------------------- fast entry
#: the options the fast entry takes, each at most once; with anything else on the command line click parses it
FAST_OPTIONS = ("--task", "--gt", "--pred", "--json")


def fast_eval_args(args: Sequence[str]) -> dict[str, str] | None:
    """The options of ``eval --task T --gt G --pred P [--json J]`` (``sys.argv[1:]``; any order, ``--opt value``
    or ``--opt=value``), or None for any other command line: another option, a repeated one, ``--help``, an
    argument, an empty value or one starting with ``-`` -- everything click might read otherwise or refuse."""
    if not args or args[0] != "eval":
        return None
    found: dict[str, str] = {}
    i = 1
    while i < len(args):
        name, equals, value = args[i].partition("=")
        if name not in FAST_OPTIONS or name in found:
            return None
        if not equals:
            if i + 1 >= len(args):
                return None
            i += 1
            value = args[i]
        if not value or value.startswith("-"):
            return None
        found[name] = value
        i += 1
    return found if {"--task", "--gt", "--pred"} <= set(found) else None


class _JsonOption:
    """What the ``--json`` check (``harness.io.validation.cli.output_file``) reads of click's parameter."""

    name = "json_out"
    opts = ["--json"]


def run_fast_eval(argv: Sequence[str]) -> None:
    """``bench eval --task T --gt G --pred P [--json J]`` scored without importing click: the command line's
    click group (``harness.cli.main``) costs ~25 ms of start-up, a tenth of a keypoints evaluation's whole
    process.  Runs the click command's own code (``harness.cli.eval_files.score_files``, the ``--json`` check)
    and reports as the click path does (``BenchGroup.invoke`` and click's ``main``): a ``BenchError`` is one line
    ``error: ...`` on stderr and its exit code, an interrupt ``Aborted!`` and 1, success 0.  Exits the process;
    returns (doing nothing) for any other command line, or when click is asked for shell completion."""
    if not invoked_as_cli(argv) or any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return
    given = fast_eval_args(argv[1:])
    if given is None:
        return
    _exit(_fast_eval(given))


def _exit(code: int) -> None:
    """Exit without the interpreter's teardown (freeing every module and object one by one: ~15 ms, 5% of a
    keypoints evaluation's whole process) when it has nothing else to do: the atexit handlers run here and the
    output is flushed, as at a normal exit.  With a non-daemon thread still running, or output that cannot be
    flushed, the normal exit (which waits for the thread, or reports the flush) instead."""
    import atexit
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - e.g. a closed pipe: the interpreter's exit reports it as it always does
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - what the interpreter's exit does when the last flush fails
        os._exit(120)
    os._exit(code)


def _fast_eval(given: dict[str, str]) -> int:
    from harness.core.errors import BenchError

    try:
        from harness.cli.eval_files import FILE_OPTIONS, score_files
        from harness.io.validation.cli import output_file

        json_out = output_file(None, _JsonOption, Path(given["--json"])) if "--json" in given else None
        score_files(given["--task"], Path(given["--gt"]), Path(given["--pred"]), None, None, json_out,
                    {name: False if name in ("reduce_zero_label", "allow_missing") else None for name in FILE_OPTIONS})
    except BenchError as exc:
        import click

        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except (EOFError, KeyboardInterrupt):
        import click

        click.echo(file=sys.stderr)  # as click's main: a blank line closes the terminal's ^C echo
        click.echo("Aborted!", file=sys.stderr)
        return 1
    except OSError as exc:
        import errno

        if exc.errno != errno.EPIPE:
            raise
        from click.utils import _PacifyFlushWrapper  # what click's main does on a closed pipe

        sys.stdout = _PacifyFlushWrapper(sys.stdout)  # type: ignore[assignment]
        sys.stderr = _PacifyFlushWrapper(sys.stderr)  # type: ignore[assignment]
        return 1
    return 0
