"""The `mikro` command: cluster lifecycle, addons, images, and kubectl's verbs.

Thin: it parses arguments and calls the API client (`client`, `kubectl`); only the
lifecycle and image commands import the Docker side, lazily.
"""

from __future__ import annotations

import base64
import functools
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from mikro import config
from mikro.api import resources
from mikro.api.resources import BY_KIND, Resource
from mikro.cli import applycmd, applyplan, kubectl
from mikro.cli import rollout as rollout_mod
from mikro.cli.client import Client, NotRunning
from mikro.errors import ApiError, ManifestError, StateDirError

ADDONS_NS, ADDONS_CM = "kube-system", "mikro-addons"
NOT_RUNNING_HINT = "mikro is not running; start it with `mikro start`"


def _yaml() -> Any:
    import yaml  # only the commands that print or read YAML pay for it

    return yaml


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can cause into one `error:` line and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotRunning:
            fail(NOT_RUNNING_HINT)
        except (ManifestError, StateDirError) as exc:
            fail(str(exc))
        except kubectl.UsageError as exc:
            fail(str(exc))
        except ApiError as exc:
            # kubectl's "Error from server (NotFound): ...", with mikro's "error:" first
            fail(f"from server ({exc.reason}): {exc.message}")
        except KeyboardInterrupt:
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(0)
        except Exception as exc:
            # the Docker SDK's refusals (docker.errors.*): one line, as for the API's
            if type(exc).__module__.startswith("docker."):
                fail(f"the Docker engine refused: {getattr(exc, 'explanation', None) or exc}")
            raise

    return wrapper


def docker_side() -> Any:
    """Import the Docker side only for the commands that need it (start, stop, reset, images)."""
    from mikro.node import docker_backend

    try:
        return docker_backend.Docker(config.cluster_name())
    except docker_backend.DockerUnavailable as exc:
        fail(str(exc))


def running_client() -> Client | None:
    try:
        client = Client.from_state()
    except NotRunning:
        return None
    return client if client.healthy() else None


# -- lifecycle -----------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mikro")
def main() -> None:
    """mikro: a local Kubernetes-style microcluster on Docker."""


@main.command()
@click.option(
    "--bind-address",
    default=None,
    help="Host address for ingress, NodePort and LoadBalancer ports (default 127.0.0.1).",
)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the API.")
@click.option(
    "--autostart/--no-autostart",
    default=None,
    help="Whether the cluster comes back after a reboot until `mikro stop` (the default: the Docker "
    "engine supervises the control plane), or runs as a plain background process. Remembered.",
)
@handled
def start(bind_address: str | None, timeout: float, autostart: bool | None) -> None:
    """Start the cluster (and everything that was running in it)."""
    started = time.monotonic()
    from mikro.cli import supervised

    # (started early by mikro.cli.entry: the wait below says when it answers)
    if not supervised.started_early() and running_client() is not None:
        click.echo("mikro is already running")
        return
    paths = config.ensure_state_dir()
    settings = config.load_settings(paths)
    was_supervised = settings.get("autostart", True)
    if bind_address:
        settings["bind_address"] = bind_address
    if autostart is not None:
        settings["autostart"] = autostart
    if bind_address or autostart is not None:
        config.save_settings(paths, settings)
    if settings.get("autostart", True):
        from mikro.cli import supervised
        from mikro.lifecycle import LifecycleError

        try:
            info = supervised.start(
                paths,
                config.cluster_name(),
                timeout,
                lambda ep: Client("127.0.0.1", ep["port"], ep["token"]).healthy(),
                click.echo,
            )
        except LifecycleError as exc:
            fail(str(exc))
        click.echo(
            f"Started mikro ({config.cluster_name()}) in {time.monotonic() - started:.2f}s: "
            f"API at https://127.0.0.1:{info['port']}"
        )
        click.echo("It comes back after a reboot until `mikro stop` (see `mikro start --help`).")
        return
    if was_supervised:
        from mikro.cli import supervised

        supervised.forget(config.cluster_name())
    # The control plane checks Docker itself (and says so); importing the Docker client here
    # too would only slow the start down.
    pid = spawn_control_plane(paths.log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            tail = paths.log.read_text(errors="replace").strip().splitlines()[-5:]
            if tail and tail[-1].startswith("error: "):
                fail(tail[-1].removeprefix("error: "))
            fail("the control plane exited during start:\n" + "\n".join(tail))
        info = config.read_json(paths.endpoint)
        if info and info.get("pid") == pid and Client("127.0.0.1", info["port"], info["token"]).healthy():
            click.echo(
                f"Started mikro ({config.cluster_name()}) in {time.monotonic() - started:.2f}s: "
                f"API at https://127.0.0.1:{info['port']}"
            )
            return
        time.sleep(0.02)
    fail(f"the control plane did not become ready within {timeout:.0f}s; see {paths.log}")


@main.command()
@click.option("--timeout", default=180.0, show_default=True)
@handled
def stop(timeout: float) -> None:
    """Stop every container of the cluster, then the control plane; keep all state."""
    from mikro.cli import supervised

    if supervised.stop(config.cluster_name(), timeout):
        click.echo("Stopped.")
        return
    info = config.read_json(config.paths().endpoint)
    pid = int(info["pid"]) if info and info.get("pid") else None
    if pid is None or not _alive(pid):
        click.echo("mikro is not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        fail(f"the control plane (pid {pid}) did not stop within {timeout:.0f}s")
    click.echo("Stopped.")


def confirm(question: str) -> bool:
    try:
        return click.confirm(question)
    except click.Abort:  # no terminal to answer (or ^C): that is a no
        click.echo("", err=True)
        return False


def spawn_control_plane(log_path: Any) -> int:
    """Fork the control plane into a session of its own, its output in the log file. A fork
    instead of a new interpreter: the start is shorter by a whole Python start-up."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        from mikro import controlplane

        code = controlplane.main()
    except BaseException:  # noqa: BLE001 - the child must never return into the CLI
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this very process counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def addon_catalog() -> dict[str, dict[str, Any]]:
    from mikro.net.ingress import addons_root

    catalog = {}
    for descriptor in sorted(addons_root().glob("*/addon.yaml")):
        data = _yaml().safe_load(descriptor.read_text())
        catalog[data["name"]] = data
    return catalog


def addon_state(client: Client) -> dict[str, str]:
    cm = client.get(BY_KIND["ConfigMap"], ADDONS_NS, ADDONS_CM)
    return dict(cm.get("data") or {})


@main.command()
@click.option("--format", "fmt", type=click.Choice(["pretty", "yaml", "short"]), default="pretty")
@click.option("--wait-ready", is_flag=True, help="Wait until mikro is running.")
@click.option("--timeout", default=30.0, help="Seconds --wait-ready waits.")
@click.option("--watch", "-w", "live", is_flag=True, help="A live view of the workloads (one snapshot when piped).")
@handled
def status(fmt: str, wait_ready: bool, timeout: float, live: bool) -> None:
    """Whether mikro runs, its API address and its addons (--watch: the workloads, live)."""
    deadline = time.monotonic() + timeout
    client = running_client()
    while client is None and wait_ready and time.monotonic() < deadline:
        time.sleep(0.2)
        client = running_client()
    if client is None:
        from mikro.cli import supervised

        boot = supervised.starts_at_boot(config.cluster_name())
        if fmt == "yaml":
            data = {"microk8s": {"running": False}, "mikro": {"running": False, "startsAtBoot": bool(boot)}}
            click.echo(_yaml().safe_dump(data).rstrip())
        else:
            click.echo("mikro is not running. Use `mikro start` to start it.")
            if boot is not None:
                click.echo(f"starts at boot: {_boot_words(bool(boot))}")
        sys.exit(1)
    if live:
        show_overview(client)
        return
    boot = bool((config.read_json(config.paths().endpoint) or {}).get("container"))
    state = addon_state(client)
    catalog = addon_catalog()
    enabled = [n for n in catalog if state.get(n) == "enabled"]
    disabled = [n for n in catalog if n not in enabled]
    if fmt == "yaml":
        data = {
            "mikro": {
                "running": True,
                "cluster": config.cluster_name(),
                "api": client.server,
                "startsAtBoot": boot,
            },
            "addons": [
                {
                    "name": n,
                    "description": catalog[n]["description"],
                    "status": "enabled" if n in enabled else "disabled",
                }
                for n in catalog
            ],
        }
        click.echo(_yaml().safe_dump(data, sort_keys=False).rstrip())
        return
    if fmt == "short":
        click.echo("mikro is running")
        click.echo(f"starts at boot: {'yes' if boot else 'no'}")
        for n in catalog:
            click.echo(f"{n}: {'enabled' if n in enabled else 'disabled'}")
        return
    click.echo("mikro is running")
    click.echo(f"api: {client.server}")
    click.echo(f"starts at boot: {_boot_words(boot)}")
    click.echo("addons:")
    click.echo("  enabled:")
    for n in enabled:
        # An enabled addon that does not run says why (the control plane reads its container).
        problem = str(state.get(f"{n}.status") or "")
        click.echo(
            f"    {n:<20} # {catalog[n]['description']}" + (f" ({problem})" if problem.startswith("error:") else "")
        )
    click.echo("  disabled:")
    for n in disabled:
        click.echo(f"    {n:<20} # {catalog[n]['description']}")


def show_overview(client: Client) -> None:
    """Each workload with its pods, what serves it and its last error; live on a terminal."""
    import threading

    from rich.console import Console
    from rich.live import Live

    from mikro.cli import overview

    console = Console()

    def header() -> str:
        return f"mikro ({config.cluster_name()}) at {client.server}, {time.strftime('%H:%M:%S')}"

    if not console.is_terminal:
        snapshot = overview.fetch(client, None, {})
        console.print(overview.render(overview.build(snapshot.objects, snapshot.log_tails), header()), soft_wrap=True)
        return
    stop = threading.Event()
    with Live(console=console, auto_refresh=False, screen=False) as live:

        def draw(snapshot: overview.Snapshot) -> None:
            rows = overview.build(snapshot.objects, snapshot.log_tails)
            live.update(overview.render(rows, header() + "  (Ctrl-C to quit)"), refresh=True)

        try:
            overview.watch(client, None, draw, stop)
        except KeyboardInterrupt:
            stop.set()


def _boot_words(boot: bool) -> str:
    if boot:
        return "yes (the Docker engine brings it back until `mikro stop`)"
    if config.load_settings(config.paths()).get("autostart", True):
        return "no (`mikro start` starts it, and then at every boot)"
    return "no (started with --no-autostart; `mikro start --autostart` changes that)"


@main.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handled
def reset(yes: bool) -> None:
    """Remove every container, network, volume and object of the cluster."""
    if not yes and not confirm(
        f"This removes every object, container, network and volume of cluster {config.cluster_name()!r}. Continue?"
    ):
        fail("reset cancelled")
    from mikro.cli import supervised

    supervised.stop(config.cluster_name(), 180)
    info = config.read_json(config.paths().endpoint)
    if info and info.get("pid") and _alive(int(info["pid"])):
        os.kill(int(info["pid"]), signal.SIGTERM)
        while _alive(int(info["pid"])):
            time.sleep(0.05)
    docker = docker_side()
    for c in docker.containers():
        docker.remove(c["Id"])
    for vol in docker.volumes():
        vol.remove(force=True)
    refused = docker.remove_network()
    if refused:
        # the rest of the reset still happens: a leftover empty network holds no state
        click.echo(f"warning: Docker kept network {docker.network_name()}: {refused} "
                   "(it can be removed once the engine restarts; mikro start reuses it)", err=True)
    paths = config.paths()
    for path in (paths.db, paths.db.with_name("store.db-wal"), paths.db.with_name("store.db-shm"), paths.endpoint):
        if path.exists():
            path.unlink()
    import shutil

    for directory in (paths.proxies, paths.ingress, paths.root / "pods", paths.volumes):
        shutil.rmtree(directory, ignore_errors=True)
    settings = config.load_settings(paths)
    settings.pop("subnet", None)
    if paths.root.exists():
        config.save_settings(paths, settings)
    click.echo(f"Cluster {config.cluster_name()} reset.")


@main.command("config")
@handled
def config_cmd() -> None:
    """Print a kubeconfig for this cluster (context `mikro`)."""
    document = kubeconfig_document()
    if document is None:
        fail(NOT_RUNNING_HINT)
    click.echo(_yaml().safe_dump(document, sort_keys=False).rstrip())


def kubeconfig_document() -> dict[str, Any] | None:
    """This cluster's kubeconfig (server, CA, token; context `mikro`), None before a first start."""
    info = config.read_json(config.paths().endpoint)
    settings = config.load_settings(config.paths())
    port = (info or {}).get("port") or settings.get("port")
    token = (info or {}).get("token") or settings.get("token")
    if not port or not token:
        return None
    cluster = config.cluster_name()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": base64.b64encode(config.paths().ca.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": f"{cluster}-admin", "user": {"token": token}}],
        "contexts": [
            {"name": "mikro", "context": {"cluster": cluster, "user": f"{cluster}-admin", "namespace": "default"}}
        ],
        "current-context": "mikro",
    }


# -- addons --------------------------------------------------------------------------------


# Addons that microk8s users enable and that mikro has built in: `enable`/`disable` say so.
BUILT_IN = {
    "dns": "DNS is built in and always on: pods resolve Services by name (svc, svc.ns, svc.ns.svc.cluster.local)"
}


def _check_addons(names: tuple[str, ...], catalog: dict[str, Any]) -> None:
    unknown = [n for n in names if n not in catalog and n not in BUILT_IN]
    if unknown:
        fail(f"unknown addon {unknown[0]!r}; known addons: {', '.join([*catalog, *BUILT_IN])}")


@main.command()
@click.argument("addons", nargs=-1, required=True)
@click.option("--http-port", default=80, show_default=True, help="Host port for HTTP (ingress).")
@click.option("--https-port", default=443, show_default=True, help="Host port for HTTPS (ingress).")
@click.option("--timeout", default=60.0, show_default=True)
@handled
def enable(addons: tuple[str, ...], http_port: int, https_port: int, timeout: float) -> None:
    """Enable addons, one after the other (see `mikro addons list`)."""
    catalog = addon_catalog()
    _check_addons(addons, catalog)
    for addon in addons:
        if addon in BUILT_IN:
            click.echo(f"Addon {addon} is enabled: {BUILT_IN[addon]}")
        else:
            _enable(catalog, addon, http_port, https_port, timeout)


def _absent_images(images: list[str]) -> list[str]:
    """The images of `images` the engine lacks: asked over its socket without the Docker SDK
    (0.25 s of CPU to import) where it can be (see mikro.node.enginelite)."""
    from mikro.node import enginelite

    engine = enginelite.Engine.from_env()
    if engine is not None:
        try:
            return [image for image in images if engine.image(image) is None]
        except enginelite.EngineError:
            pass  # the SDK's path words what is wrong
        finally:
            engine.close()
    docker = docker_side()
    return [image for image in images if docker.image(image) is None]


def _enable(catalog: dict[str, Any], addon: str, http_port: int, https_port: int, timeout: float) -> None:
    client = Client.from_state()
    cm = client.get(BY_KIND["ConfigMap"], ADDONS_NS, ADDONS_CM)
    data = cm.get("data") or {}
    images = catalog[addon].get("images") or []
    if config.NGINX_IMAGE in images:
        absent = _absent_images(images)
        if absent:
            fail(f"image {', '.join(absent)} is missing; run `mikro images prepare` first (works offline)")
    patch = {
        "data": {
            addon: "enabled",
            f"{addon}.status": "starting",
            f"{addon}.httpPort": str(http_port),
            f"{addon}.httpsPort": str(https_port),
        }
    }
    if (
        data.get(addon) == "enabled"
        and data.get(f"{addon}.status") == "running"
        and data.get(f"{addon}.httpPort") == str(http_port)
        and data.get(f"{addon}.httpsPort") == str(https_port)
    ):
        click.echo(f"Addon {addon} is already enabled")
        return
    client.patch(BY_KIND["ConfigMap"], ADDONS_NS, ADDONS_CM, patch)
    if addon == "ingress":
        for name in ("public", "nginx"):
            body = {
                "metadata": {
                    "name": name,
                    "annotations": {
                        "ingressclass.kubernetes.io/is-default-class": "true" if name == "public" else "false"
                    },
                },
                "spec": {"controller": "k8s.io/ingress-nginx"},
            }
            try:
                client.create(BY_KIND["IngressClass"], None, body)
            except ApiError as exc:
                if exc.code != 409:
                    raise
    click.echo(f"Enabling {addon}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = addon_state(client).get(f"{addon}.status", "")
        if state == "running":
            where = f" (HTTP on port {http_port}, HTTPS on port {https_port})" if addon == "ingress" else ""
            if addon == "dashboard":
                port = addon_state(client).get("dashboard.port")
                where = f" at http://127.0.0.1:{port}/ (`mikro dashboard` opens it with the cluster's token)"
            click.echo(f"Addon {addon} is enabled{where}")
            return
        if state.startswith("error:"):
            client.patch(BY_KIND["ConfigMap"], ADDONS_NS, ADDONS_CM, {"data": {addon: "disabled"}})
            fail(f"cannot enable {addon}: {state[6:].strip()}")
        time.sleep(0.02)  # a GET of one ConfigMap: the ingress is ready within a poll of it
    fail(f"addon {addon} did not start within {timeout:.0f}s")


@main.command()
@click.argument("addons", nargs=-1, required=True)
@handled
def disable(addons: tuple[str, ...]) -> None:
    """Disable addons."""
    catalog = addon_catalog()
    _check_addons(addons, catalog)
    for addon in addons:
        if addon in BUILT_IN:
            click.echo(f"Addon {addon} stays enabled: {BUILT_IN[addon]}")
        else:
            _disable(addon)


def _disable(addon: str) -> None:
    client = Client.from_state()
    client.patch(BY_KIND["ConfigMap"], ADDONS_NS, ADDONS_CM, {"data": {addon: "disabled", f"{addon}.status": None}})
    if addon == "ingress":
        for name in ("public", "nginx"):
            try:
                client.delete(BY_KIND["IngressClass"], None, name)
            except ApiError:
                pass
    click.echo(f"Addon {addon} is disabled")


@main.command("dashboard")
@click.option("--url", "url_only", is_flag=True, help="Print the URL only; do not open a browser.")
@handled
def dashboard_cmd(url_only: bool) -> None:
    """Open the dashboard (enable it first: mikro enable dashboard)."""
    client = Client.from_state()
    state = addon_state(client)
    if state.get("dashboard") != "enabled" or state.get("dashboard.status") != "running":
        fail("the dashboard addon is not enabled; run `mikro enable dashboard`")
    # The token rides in the fragment: browsers never send it to a server, and the page moves
    # it to its session storage at once.
    url = f"http://127.0.0.1:{state['dashboard.port']}/#token={client.token}"
    click.echo(url)
    if not url_only:
        import webbrowser

        webbrowser.open(url)


@main.command("inspect")
@click.option("--output", "-o", default=None, help="The archive to write (default mikro-inspect-<cluster>-<time>.tar.gz).")
@handled
def inspect_cmd(output: str | None) -> None:
    """Collect logs, objects (Secrets redacted) and container states into one archive."""
    from pathlib import Path

    from mikro.cli import inspect as inspection

    cluster = config.cluster_name()
    target = Path(output or f"mikro-inspect-{cluster}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
    click.echo(f"Inspecting mikro ({cluster})")
    found = inspection.collect(target, cluster, running_client() is not None)
    if found:
        click.echo("Problems found:")
        for problem in found:
            click.echo(f"  - {problem}")
    else:
        click.echo("No problems found.")
    click.echo(f"Report archive: {target}")


@main.group()
def addons() -> None:
    """Addons."""


@addons.command("list")
@handled
def addons_list() -> None:
    """List the addons, enabled and disabled."""
    catalog = addon_catalog()
    client = running_client()
    state = addon_state(client) if client else {}
    for section, enabled in (("enabled", True), ("disabled", False)):
        click.echo(f"{section}:")
        for name, data in catalog.items():
            if (state.get(name) == "enabled") == enabled:
                click.echo(f"  {name:<20} # {data['description']}")


# -- images --------------------------------------------------------------------------------


@main.group()
def images() -> None:
    """Images in the host's Docker: prepare mikro's own, import, list."""


@images.command("prepare")
@click.option("--force", is_flag=True, help="Rebuild even when present.")
@handled
def images_prepare(force: bool) -> None:
    """Make the images mikro needs available, without a registry."""
    from rich.console import Console

    from mikro.node.images import ImageError, prepare

    docker = docker_side()
    started = time.monotonic()
    console = Console(highlight=False)
    try:
        with console.status("preparing mikro's images") as progress:

            def report(line: str) -> None:
                progress.update(line)
                console.print(f"  {line}")

            built = prepare(docker, report, force)
    except ImageError as exc:
        fail(str(exc))
    click.echo(f"Images ready ({len(built)} built) in {time.monotonic() - started:.1f}s")


@images.command("import")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@handled
def images_import(archive: str) -> None:
    """Load images from a `docker save` tar archive."""
    docker = docker_side()
    with open(archive, "rb") as fh:
        tags = docker.load(fh.read())
    for tag in tags:
        click.echo(f"Imported {tag}")


@images.command("ls")
@handled
def images_ls() -> None:
    """List the images the host's Docker has."""
    from mikro.cli.printers import format_table, human_duration

    docker = docker_side()
    rows = []
    for image in docker.images():
        for tag in image.get("RepoTags") or ["<none>:<none>"]:
            repo, _, version = tag.rpartition(":")
            rows.append(
                [
                    repo,
                    version,
                    image["Id"].split(":")[-1][:12],
                    human_duration(time.time() - image["Created"]) + " ago",
                    f"{image['Size'] / 1e6:.1f}MB",
                ]
            )
    click.echo(format_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], sorted(rows)))


# -- apply / delete ------------------------------------------------------------------------


VALIDATE_OPTION = click.option(
    "--validate",
    type=click.Choice(applyplan.VALIDATE_CHOICES),
    default="strict",
    show_default=True,
    help="As kubectl: strict refuses unknown fields, warn reports them, ignore drops them.",
)


@main.command()
@click.option("-f", "--filename", "files", multiple=True, help="File, directory or - (stdin).")
@click.option("-R", "--recursive", is_flag=True)
@click.option("-n", "--namespace", default="default")
@click.option("--wait", is_flag=True, help="Wait until every applied workload is ready.")
@click.option("--timeout", default=300.0)
@VALIDATE_OPTION
@handled
def apply(files: tuple[str, ...], recursive: bool, namespace: str, wait: bool, timeout: float, validate: str) -> None:
    """Apply manifests (kubectl apply -f)."""
    sys.exit(applycmd.apply(files, recursive, namespace, wait, timeout, validate))


def _delete(
    targets: tuple[str, ...],
    files: tuple[str, ...],
    recursive: bool,
    namespace: str,
    all_namespaces: bool,
    cascade: str,
    ignore_missing: bool,
    grace: int | None,
    now: bool,
    wait: bool,
    selector: str | None,
) -> None:
    client = Client.from_state()
    if now:
        grace = 0 if grace is None else grace
    batches: list[tuple[Any, str, list[str]]] = []
    if files:
        from mikro.cli import manifest

        for doc in manifest.load(files, recursive, namespace, learn=lambda objs: applycmd.learn_kinds(lambda: client, objs)):
            res = resources.kind_of(doc.obj["kind"])
            batches.append((res, doc.obj["metadata"].get("namespace") or namespace, [doc.obj["metadata"]["name"]]))
    else:
        from mikro.cli import discovery

        if discovery.needs_learning(list(targets)):
            discovery.learn(client)
        for kinds, names in kubectl.parse_targets(targets):
            for res in kinds:
                if not names:
                    if not selector:
                        fail("resource(s) were provided, but no name was specified")
                    listing = client.list(res, namespace if res.namespaced else None, labelSelector=selector)
                    names = [o["metadata"]["name"] for o in listing["items"]]
                batches.append((res, namespace, names))
    from mikro.cli import bulk  # every object at once, in parallel, the lines in order

    named = [(res, ns, name) for res, ns, names in batches for name in names]
    code, deleted = bulk.delete(client, named, cascade, ignore_missing, grace)
    if wait:
        kubectl.wait_deleted(client, deleted)
    sys.exit(code)


def delete_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.argument("targets", nargs=-1),
            click.option("-f", "--filename", "files", multiple=True),
            click.option("-R", "--recursive", is_flag=True),
            click.option("-n", "--namespace", default="default"),
            click.option("-A", "--all-namespaces", is_flag=True),
            click.option("--cascade", type=click.Choice(["background", "orphan", "foreground"]), default="background"),
            click.option("--ignore-not-found", "ignore_missing", is_flag=True),
            click.option("--grace-period", "grace", type=int, default=None),
            click.option("--now", is_flag=True),
            click.option(
                "--wait",
                type=click.BOOL,
                is_flag=False,
                flag_value=True,
                default=True,
                help="Wait for the objects to be gone (--wait=false to return at once).",
            ),
            click.option("-l", "--selector", default=None),
        ]
    ):
        fn = option(fn)
    return fn


@main.command()
@delete_options
@handled
def delete(**kwargs: Any) -> None:
    """Delete objects by file, or by KIND NAME... (kubectl delete)."""
    _delete(**kwargs)


# -- kubectl -------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def kubectl_group() -> None:
    """kubectl against this cluster."""


def get_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.argument("targets", nargs=-1),
            click.option("-n", "--namespace", default="default"),
            click.option("-A", "--all-namespaces", is_flag=True),
            click.option("-l", "--selector", default=None),
            click.option("--field-selector", default=None),
            click.option("-o", "--output", default=None),
            click.option("-w", "--watch", is_flag=True),
        ]
    ):
        fn = option(fn)
    return fn


@kubectl_group.command("get")
@get_options
@handled
def kubectl_get(targets: tuple[str, ...], **options: Any) -> None:
    """Display one or many resources."""
    sys.exit(kubectl.get(Client.from_state(), list(targets), **options))


@kubectl_group.command("describe")
@click.argument("kind")
@click.argument("names", nargs=-1)
@click.option("-n", "--namespace", default="default")
@click.option("-l", "--selector", default=None)
@handled
def kubectl_describe(kind: str, names: tuple[str, ...], namespace: str, selector: str | None) -> None:
    """Show details of a resource, with its events."""
    if "/" in kind:
        kind, _, name = kind.partition("/")
        names = (name, *names)
    sys.exit(kubectl.describe(Client.from_state(), kubectl.resolve(kind), namespace, list(names), selector))


@kubectl_group.command("delete")
@delete_options
@handled
def kubectl_delete(**kwargs: Any) -> None:
    """Delete resources."""
    _delete(**kwargs)


@kubectl_group.command("apply")
@click.option("-f", "--filename", "files", multiple=True)
@click.option("-R", "--recursive", is_flag=True)
@click.option("-n", "--namespace", default="default")
@click.option("--wait", is_flag=True)
@click.option("--timeout", default=300.0)
@VALIDATE_OPTION
@handled
def kubectl_apply(
    files: tuple[str, ...], recursive: bool, namespace: str, wait: bool, timeout: float, validate: str
) -> None:
    """Apply a configuration by file name or stdin."""
    sys.exit(applycmd.apply(files, recursive, namespace, wait, timeout, validate))


ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def _workload_arg(target: str, name: str | None) -> tuple[Resource, str]:
    """deployment/NAME, sts/NAME, ds NAME ...: the kinds `rollout` works on."""
    kind, _, rest = target.partition("/")
    res = kubectl.resolve(kind)
    if res.kind not in ROLLOUT_KINDS:
        raise kubectl.UsageError(f'no rollout support for "{kind}"; use deployment, statefulset or daemonset')
    if not (rest or name):
        raise kubectl.UsageError(f"required resource name not specified for {res.plural}")
    return res, rest or name or ""


@kubectl_group.group("create")
def kubectl_create() -> None:
    """Create a resource with a generator (kubectl create job NAME --from=cronjob/X)."""


@kubectl_create.command("job")
@click.argument("name")
@click.option("--from", "source", required=True, help="The CronJob to run now: cronjob/NAME.")
@click.option("-n", "--namespace", default="default")
@handled
def kubectl_create_job(name: str, source: str, namespace: str) -> None:
    """Create a Job from a CronJob's template, to run it now."""
    from mikro.cli import batch

    click.echo(batch.create_job(Client.from_state(), name, source, namespace))


@kubectl_group.command("scale")
@click.argument("target")
@click.argument("name", required=False)
@click.option("--replicas", type=int, required=True)
@click.option("-n", "--namespace", default="default")
@handled
def kubectl_scale(target: str, name: str | None, replicas: int, namespace: str) -> None:
    """Set a new size for a Deployment or ReplicaSet."""
    kind, _, rest = target.partition("/")
    res = kubectl.resolve(kind)
    client = Client.from_state()
    client.patch(res, namespace, rest or name or "", {"spec": {"replicas": replicas}}, sub="scale")
    click.echo(f"{res.qualified}/{rest or name} scaled")


@kubectl_group.group("rollout")
def rollout() -> None:
    """Manage the rollout of a Deployment, StatefulSet or DaemonSet."""


@rollout.command("status")
@click.argument("target")
@click.argument("name", required=False)
@click.option("-n", "--namespace", default="default")
@click.option("--timeout", default=300.0)
@handled
def rollout_status(target: str, name: str | None, namespace: str, timeout: float) -> None:
    client = Client.from_state()
    res, wname = _workload_arg(target, name)
    obj = client.get(res, namespace, wname)
    if res.kind != "Deployment":
        rollout_mod.progress(obj)  # refuses OnDelete, as kubectl does
    sys.exit(kubectl.wait_ready(client, [obj], timeout, for_apply=False))


@rollout.command("restart")
@click.argument("target")
@click.argument("name", required=False)
@click.option("-n", "--namespace", default="default")
@handled
def rollout_restart(target: str, name: str | None, namespace: str) -> None:
    client = Client.from_state()
    res, wname = _workload_arg(target, name)
    click.echo(rollout_mod.restart(client, res, namespace, wname))


@rollout.command("undo")
@click.argument("target")
@click.argument("name", required=False)
@click.option("-n", "--namespace", default="default")
@click.option("--to-revision", type=int, default=0)
@handled
def rollout_undo(target: str, name: str | None, namespace: str, to_revision: int) -> None:
    client = Client.from_state()
    res, wname = _workload_arg(target, name)
    obj = client.get(res, namespace, wname)
    if res.kind == "Deployment":
        click.echo(kubectl.rollout_undo(client, obj, to_revision))
    else:
        click.echo(rollout_mod.undo(client, res, obj, to_revision))


@rollout.command("history")
@click.argument("target")
@click.argument("name", required=False)
@click.option("-n", "--namespace", default="default")
@click.option("--revision", type=int, default=0)
@handled
def rollout_history(target: str, name: str | None, namespace: str, revision: int) -> None:
    client = Client.from_state()
    res, wname = _workload_arg(target, name)
    obj = client.get(res, namespace, wname)
    if res.kind != "Deployment":
        for line in rollout_mod.history_lines(client, res, obj, revision):
            click.echo(line)
        return
    click.echo(f"deployment.apps/{wname}")
    click.echo("REVISION  CHANGE-CAUSE")
    for rev, rs in kubectl.rollout_history(client, obj):
        cause = (rs["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause", "<none>")
        click.echo(f"{rev:<10}{cause}")


def _pod_for(client: Client, target: str, namespace: str) -> str:
    if "/" not in target:
        return target
    kind, _, name = target.partition("/")
    res = kubectl.resolve(kind)
    if res.kind == "Pod":
        return name
    obj = client.get(res, namespace, name)
    pods = [p for p in kubectl.pods_of(client, obj) if not p["metadata"].get("deletionTimestamp")]
    if not pods:
        raise kubectl.UsageError(f"no pod found for {target}")
    return sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"])[0]["metadata"]["name"]


@kubectl_group.command("logs")
@click.argument("target")
@click.option("-c", "--container", default=None)
@click.option("-f", "--follow", is_flag=True)
@click.option("-p", "--previous", is_flag=True)
@click.option("--tail", type=int, default=-1)
@click.option("--timestamps", is_flag=True)
@click.option("-n", "--namespace", default="default")
@handled
def kubectl_logs(
    target: str, container: str | None, follow: bool, previous: bool, tail: int, timestamps: bool, namespace: str
) -> None:
    """Print the logs of a container in a pod."""
    client = Client.from_state()
    pod = _pod_for(client, target, namespace)
    query = {"follow": str(follow).lower(), "previous": str(previous).lower(), "timestamps": str(timestamps).lower()}
    if container:
        query["container"] = container
    if tail >= 0:
        query["tailLines"] = str(tail)
    for chunk in client.stream(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query):
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()


@kubectl_group.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("command", nargs=-1, required=True)
@click.option("-c", "--container", default=None)
@click.option("-i", "--stdin", is_flag=True)
@click.option("-t", "--tty", is_flag=True)
@click.option("-n", "--namespace", default="default")
@handled
def kubectl_exec(
    target: str, command: tuple[str, ...], container: str | None, stdin: bool, tty: bool, namespace: str
) -> None:
    """Execute a command in a container: mikro kubectl exec POD -- CMD (over the API, as kubectl)."""
    import contextlib

    from mikro.cli import streams

    client = Client.from_state()
    pod_name = _pod_for(client, target, namespace)
    if tty and not sys.stdin.isatty():
        click.echo("Unable to use a TTY - input is not a terminal or the right kind of file", err=True)
        tty = False

    def output(channel: int, data: bytes) -> None:
        stream = sys.stdout if channel == 1 else sys.stderr
        stream.buffer.write(data)
        stream.flush()

    path = f"/api/v1/namespaces/{namespace}/pods/{pod_name}/exec"
    with streams.raw_terminal() if tty else contextlib.nullcontext():
        code = client.exec(
            path,
            list(command),
            container,
            output,
            stdin=sys.stdin.buffer if stdin else None,
            tty=tty,
            on_open=streams.follow_terminal_size if tty else None,
        )
    if code:
        click.echo(f"command terminated with exit code {code}", err=True)
    sys.exit(code)


@kubectl_group.command("version")
@handled
def kubectl_version() -> None:
    """Print the client and server versions."""
    client = Client.from_state()
    server = client.request("GET", "/version")
    click.echo(f"Client Version: mikro {__import__('mikro').__version__}")
    click.echo(f"Server Version: {server['gitVersion']}")


@kubectl_group.command("cluster-info")
@handled
def kubectl_cluster_info() -> None:
    client = Client.from_state()
    click.echo(f"Kubernetes control plane is running at {client.server}")


main.add_command(kubectl_group, "kubectl")


def kubectl_main() -> None:
    """`mikro.kubectl`, as the blog's `microk8s.kubectl`."""
    delegate_to_real_kubectl(sys.argv[1:])
    kubectl_group(prog_name="mikro.kubectl")


def run() -> None:
    """The `mikro` command: `mikro kubectl ...` runs a real kubectl when there is one."""
    if sys.argv[1:2] == ["kubectl"]:
        delegate_to_real_kubectl(sys.argv[2:])
    main()


def real_kubectl() -> str | None:
    """The kubectl `mikro kubectl` runs, as `microk8s kubectl` runs the real one: `$MIKRO_KUBECTL`
    (a path, or `builtin` for mikro's own verbs), else a `kubectl` on PATH, else None."""
    import shutil

    choice = os.environ.get("MIKRO_KUBECTL", "")
    if choice == "builtin":
        return None
    if choice:
        if not (os.path.isfile(choice) and os.access(choice, os.X_OK)):
            fail(f"MIKRO_KUBECTL={choice!r} is not an executable file (or use MIKRO_KUBECTL=builtin)")
        return choice
    return shutil.which("kubectl")


def delegate_to_real_kubectl(args: list[str]) -> None:
    """Replace this process with the real kubectl, pointed at this cluster by a kubeconfig of
    its own in the state directory (0600); returns when there is no real kubectl."""
    binary = real_kubectl()
    if binary is None:
        return
    document = kubeconfig_document()
    if document is None or running_client() is None:
        fail(NOT_RUNNING_HINT)
    path = config.paths().root / "kubeconfig"
    config.write_private(path, _yaml().safe_dump(document, sort_keys=False))
    sys.stdout.flush()
    os.execv(binary, [binary, "--kubeconfig", str(path), *args])


if __name__ == "__main__":
    main()
