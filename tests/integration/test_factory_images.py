"""Each factory image does its job under runc, so later tests can compare runcvm against it."""

from __future__ import annotations

import json
import urllib.request

from harness.systemd import system_state
from harness.waiting import wait_for
from image_factory.builder import Factory
from image_factory.recipes import RECIPE_LABEL

RUNC = "--runtime=runc"


def test_base_image_is_bookworm_with_path_and_cmd(docker_cli, test_images):
    config = json.loads(docker_cli.cli("image", "inspect", test_images["debian"]).stdout)[0]["Config"]
    assert config["Cmd"] == ["bash"]
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in config["Env"]
    os_release = docker_cli.cli("run", "--rm", RUNC, test_images["debian"], "cat", "/etc/os-release").stdout
    assert b"VERSION_CODENAME=bookworm" in os_release


def test_images_are_reused_while_their_recipe_is_unchanged(docker_daemon, test_images):
    results = Factory(docker_daemon, log=lambda line: None).ensure("nginx")
    assert [result.built for result in results] == [False, False]
    image = docker_daemon.images.get(test_images["nginx"])
    assert image.labels[RECIPE_LABEL] == results[-1].recipe_hash


def test_busybox_image_is_only_a_static_busybox(docker_cli, test_images):
    image = test_images["busybox"]
    assert docker_cli.cli("run", "--rm", RUNC, image, "busybox", "echo", "hello").stdout == b"hello\n"
    absent = docker_cli.cli("run", "--rm", RUNC, image, "sh", "-c",
                            "for f in /etc/passwd /etc/os-release /lib /usr; do test -e $f && echo $f; done; true")
    assert absent.stdout == b""


def test_nginx_answers_http_through_a_published_port(docker_cli, test_images):
    name = docker_cli.owner + "-nginx"
    docker_cli.cli("run", "-d", RUNC, "--name", name, "-p", "127.0.0.1::80", test_images["nginx"])
    port = docker_cli.published_port(name, "80/tcp")

    def fetch():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                return response.status, response.read()
        except OSError:
            return None

    status, body = wait_for(fetch, 30, 0.5, "nginx to answer")
    assert status == 200 and b"Welcome to nginx" in body


def test_mariadb_answers_a_client_by_name_on_a_user_network(docker_cli, test_images):
    network = docker_cli.owner + "-net"
    server = docker_cli.owner + "-db"
    docker_cli.cli("network", "create", network)
    docker_cli.cli("run", "-d", RUNC, "--name", server, "--network", network, test_images["mariadb"])

    def query():
        completed = docker_cli.cli("run", "--rm", RUNC, "--network", network, test_images["mariadb"],
                                   "mariadb", "-h", server, "-u", "root", "-N", "-e", "SELECT 6*7", check=False)
        return completed.stdout if completed.returncode == 0 else None

    assert wait_for(query, 90, 2, "mariadb to answer by name").strip() == b"42"


def test_systemd_image_boots_systemd_as_init(docker_cli, test_images):
    name = docker_cli.owner + "-systemd"
    docker_cli.cli("run", "-d", RUNC, "--name", name, "--tmpfs", "/run", "--tmpfs", "/run/lock",
                   "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro", test_images["systemd"])

    state = wait_for(lambda: system_state(docker_cli, name, 120), 60, 1, "systemd to answer")
    assert state in (b"running", b"degraded")
    assert docker_cli.cli("exec", name, "cat", "/proc/1/comm").stdout == b"systemd\n"


def test_kernel_image_carries_a_debian_cloud_kernel(docker_cli, test_images):
    listing = docker_cli.cli("run", "--rm", RUNC, test_images["kernel"], "sh", "-c",
                             "readlink /vmlinuz /initrd.img && test -s /vmlinuz && test -s /initrd.img")
    vmlinuz, initrd = listing.stdout.decode().split()
    assert vmlinuz.startswith("boot/vmlinuz-") and vmlinuz.endswith("-cloud-amd64")
    assert initrd == vmlinuz.replace("vmlinuz", "initrd.img")


def test_python3_image_runs_python(docker_cli, test_images):
    completed = docker_cli.cli("run", "--rm", RUNC, test_images["python3"], "python3", "-c", "print(6*7)")
    assert completed.stdout == b"42\n"


def test_cleanup_removes_what_a_test_created(docker_daemon, test_images):
    from harness.resources import DockerResources

    resources = DockerResources(docker_daemon, owner="cleanup-probe")
    resources.cli("network", "create", "cleanup-probe-net")
    resources.cli("volume", "create", "cleanup-probe-vol")
    resources.cli("create", "--name", "cleanup-probe-ctr", test_images["busybox"])
    resources.remove_all()
    label = {"label": "org.runcvm.test=cleanup-probe"}
    assert docker_daemon.containers.list(all=True, filters=label) == []
    assert docker_daemon.networks.list(filters=label) == []
    assert docker_daemon.volumes.list(filters=label) == []
