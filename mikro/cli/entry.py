"""The `mikro` and `mikro.kubectl` commands' entry points.

`mikro kubectl get ...` is the command people run most and time against kubectl; importing
click (and building every command's options) was about 40% of the CLI's own start-up. So the
common forms of `get` (targets, -n, -A, -l, --field-selector, -o) are parsed here, without
click, and anything else (help, -w, an option spelt another way, every other command) goes to
the click commands in `mikro.cli.main` exactly as before. Both paths call `kubectl.get`, and
word errors through `user_error`. Before either, mikro.cli.quickget takes the commonest form
of all (one built-in kind, printed as a table) with even less: a raw TLS socket, no mikro
module imported; it leaves anything else, errors included, to `kubectl.get`.

`mikro apply -f` is the other command on every user's path (and on the time to a first
answer): its common forms (-f, -R, -n, --wait, --timeout, --validate) run mikro.cli.applycmd
here the same way, click's own spellings and everything else go to click.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # (typing itself is not imported: the quick path's start counts)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

NOT_RUNNING_HINT = "mikro is not running; start it with `mikro start`"

# get's options: their names, and the keyword of kubectl.get each sets (a flag: True).
_VALUED = {
    "-n": "namespace",
    "--namespace": "namespace",
    "-l": "selector",
    "--selector": "selector",
    "--field-selector": "field_selector",
    "-o": "output",
    "--output": "output",
}
_FLAGS = {"-A": "all_namespaces", "--all-namespaces": "all_namespaces"}


def parse_get(args: list[str]) -> dict[str, Any] | None:
    """The arguments of `get` in the forms click reads the same way, as kubectl.get's keywords;
    None for anything else (click then parses it, and words its errors)."""
    options: dict[str, Any] = {
        "targets": [],
        "namespace": "default",
        "all_namespaces": False,
        "selector": None,
        "field_selector": None,
        "output": None,
        "watch": False,
    }
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            options["targets"].append(arg)
        elif arg in _FLAGS:
            options[_FLAGS[arg]] = True
        elif arg in _VALUED:
            if i >= len(args):
                return None
            options[_VALUED[arg]] = args[i]
            i += 1
        elif arg.startswith("--") and arg.partition("=")[0] in _VALUED and "=" in arg:
            name, _, value = arg.partition("=")
            options[_VALUED[name]] = value
        elif arg.startswith("-o") and len(arg) > 2 and arg[2] != "=":
            options["output"] = arg[2:]  # -owide, -ojson
        else:
            return None
    return options


# apply's options, as mikro.cli.main declares them for click: valued ones by keyword, flags.
_APPLY_VALUED = {
    "-f": "files",
    "--filename": "files",
    "-n": "namespace",
    "--namespace": "namespace",
    "--timeout": "timeout",
    "--validate": "validate",
}
_APPLY_FLAGS = {"-R": "recursive", "--recursive": "recursive", "--wait": "wait"}


def parse_apply(args: list[str]) -> dict[str, Any] | None:
    """The arguments of `apply` in the forms click reads the same way, as applycmd.apply's
    keywords; None for anything else (click then parses it, and words its errors)."""
    from mikro.cli.applyplan import VALIDATE_CHOICES  # (what apply runs imports it anyway)

    options: dict[str, Any] = {
        "files": [],
        "recursive": False,
        "namespace": "default",
        "wait": False,
        "timeout": 300.0,
        "validate": "strict",
    }
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in _APPLY_FLAGS:
            options[_APPLY_FLAGS[arg]] = True
            continue
        if arg in _APPLY_VALUED:
            if i >= len(args):
                return None
            name, value = _APPLY_VALUED[arg], args[i]
            i += 1
        elif arg.startswith("--") and "=" in arg and arg.partition("=")[0] in _APPLY_VALUED:
            name, value = _APPLY_VALUED[arg.partition("=")[0]], arg.partition("=")[2]
        else:
            return None  # an argument, -h, -fFILE, an option of another spelling
        if name == "files":
            options["files"].append(value)
        elif name == "timeout":
            try:
                options["timeout"] = float(value)
            except ValueError:
                return None
        elif name == "validate" and value not in VALIDATE_CHOICES:
            return None
        else:
            options[name] = value
    if not options["files"]:
        return None
    options["files"] = tuple(options["files"])
    return options


def user_error(exc: BaseException) -> tuple[str | None, int] | None:
    """What a user is shown for an error they can cause (an `error:` line, or nothing) and the
    exit code; None for anything else (a bug: its traceback)."""
    from mikro.cli.client import NotRunning
    from mikro.cli.kubectl import UsageError
    from mikro.errors import ApiError, ManifestError, StateDirError

    if isinstance(exc, NotRunning):
        return NOT_RUNNING_HINT, 1
    if isinstance(exc, (ManifestError, StateDirError, UsageError)):
        return str(exc), 1
    if isinstance(exc, ApiError):
        # kubectl's "Error from server (NotFound): ...", with mikro's "error:" first
        return f"from server ({exc.reason}): {exc.message}", 1
    if isinstance(exc, KeyboardInterrupt):
        return None, 130
    if isinstance(exc, BrokenPipeError):
        return None, 0
    return None


def builtin_kubectl() -> bool:
    """Whether `mikro kubectl` runs mikro's own verbs (MIKRO_KUBECTL=builtin, or no kubectl on
    PATH); a MIKRO_KUBECTL path is left to mikro.cli.main, which checks it."""
    choice = os.environ.get("MIKRO_KUBECTL", "")
    if choice:
        return choice == "builtin"
    import shutil

    return shutil.which("kubectl") is None


def _get(options: dict[str, Any]) -> int:
    from mikro.cli import kubectl
    from mikro.cli.client import Client

    targets = options.pop("targets")
    return _user_errors(lambda: kubectl.get(Client.from_state(), targets, **options))


def _user_errors(command: Callable[[], int]) -> int:
    """Run a command; the errors a user can cause as one `error:` line, and the exit code."""
    try:
        return command()
    except BaseException as exc:
        shown = user_error(exc)
        if shown is None:
            raise
        message, code = shown
        if message is not None:
            sys.stderr.write(f"error: {message}\n")
        return code


def _fast_apply(args: list[str]) -> None:
    """Run `apply ARGS` here and exit, when this module can parse them; else return. (click
    and the commands' module were 60 ms of the 300 ms of an apply of the seed stack.)"""
    options = parse_apply(args)
    if options is not None:
        from mikro.cli import applycmd

        sys.exit(_user_errors(lambda: applycmd.apply(**options)))


def _fast(args: list[str]) -> None:
    """Run `get ARGS` here and exit, when this module can parse them; else return."""
    if args[:1] == ["get"] and builtin_kubectl():
        options = parse_get(args[1:])
        if options is not None:
            from mikro.cli import quickget

            code = quickget.get(options)
            if code is None:
                sys.exit(_get(options))
            quickget.leave(code)


def _start_early() -> None:
    """A plain `mikro start` of a stopped, Docker-supervised cluster: set the containers the
    last stop stopped starting (see mikro.node.prestart) and start the control plane's
    container, before click and the commands load (0.2-0.3 s of CPU, more on a busy machine).
    The pods' containers go first: starting them is the longest chain (the control plane
    imported in 0.27 s, then waited 0.85 s for the 6 containers of the seed stack), and the
    control plane's container starts beside them. `start` then finds it started (see
    mikro.cli.supervised.start_early); anything unusual is left to it. Only with no options:
    `start --help` or a mistyped option must start nothing."""
    from mikro import config
    from mikro.cli import supervised
    from mikro.errors import StateDirError
    from mikro.lifecycle import LifecycleError
    from mikro.node import prestart

    try:
        paths = config.paths()
        if not paths.root.is_dir():
            return  # a new cluster: `start` makes the state directory
        prestart.begin(paths.root, only_if_recorded=True)
        if config.load_settings(paths).get("autostart", True) and not _answers(paths):
            supervised.start_early(paths, config.cluster_name())
    except (StateDirError, LifecycleError, OSError):
        return  # `start` words it


def _answers(paths: Any) -> bool:
    """Whether a control plane runs already (`start` then says so and starts nothing)."""
    from mikro.cli.client import Client, NotRunning

    try:
        return Client.from_state().healthy()
    except NotRunning:
        return False


def run() -> None:
    """The `mikro` command."""
    if sys.argv[1:2] == ["kubectl"]:
        _fast(sys.argv[2:])
    if sys.argv[1:2] == ["apply"]:
        _fast_apply(sys.argv[2:])
    if sys.argv[1:] == ["start"]:
        _start_early()
    from mikro.cli import main

    main.run()


def kubectl_main() -> None:
    """The `mikro.kubectl` command."""
    _fast(sys.argv[1:])
    from mikro.cli import main

    main.kubectl_main()
