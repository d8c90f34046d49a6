"""What `mdr submit` and its targets share: the run plan, the YAML they render, credential checks, the log line.

The orchestrator (``pipeline.cluster.submit``) plans a run and hands each stage to a ``Target``
(``pipeline.cluster.submit_spark``, ``pipeline.cluster.submit_k8s``); both sides use what is here.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Protocol

import yaml

from pipeline.core.config import ConfigError

CONFIG_FILE = "mdr-config.yaml"  # the effective config, as shipped to the cluster

# values of these variables must never appear in anything mdr renders, prints or ships
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY",
              "AZURE_CLIENT_SECRET", "GOOGLE_OAUTH_ACCESS_TOKEN", "HF_TOKEN")
_SECRET_KEY = re.compile(r"secret|passw|token|access[._-]?key", re.IGNORECASE)
_SECRET_REF = re.compile(r"secretKeyRef|\.secrets\.|provider$", re.IGNORECASE)  # names of secrets, not values


# --------------------------------------------------------------------------- secrets

def _secret_values() -> dict[str, str]:
    return {k: v for k in SECRET_ENV if len(v := os.environ.get(k, "")) >= 4}


def check_no_secrets(text: str, what: str) -> None:
    """Refuse to ship or print ``text`` when a credential from the environment appears in it."""
    for name, value in _secret_values().items():
        if value in text:
            raise ConfigError(f"{what} would contain the value of ${name}; credentials must come from the cluster "
                              f"(a Kubernetes secret named by cluster.credentials_secret, IRSA or workload identity), "
                              f"never from the config or the command line")


def redact(text: str) -> str:
    """Driver output and API messages are printed; any credential value in them is masked first."""
    for name, value in _secret_values().items():
        text = text.replace(value, f"<${name}>")
    return text


def check_conf_secrets(conf: dict[str, str], where: str) -> None:
    """A credential in a Spark setting would be shipped in plain text: refuse it by its key's name."""
    for key, value in conf.items():
        if value and _SECRET_KEY.search(key) and not _SECRET_REF.search(key):
            raise ConfigError(f"{where} {key}: looks like a credential; put credentials in a Kubernetes secret "
                              f"(cluster.credentials_secret) or use IRSA/workload identity/instance roles instead")


# --------------------------------------------------------------------------- plan

@dataclass(frozen=True)
class StagePlan:
    name: str
    engine: str          # spark | ray
    input: str
    output: str
    config_hash: str     # the hash the stage's manifest must carry
    committed: bool      # already committed with this config and input (skipped)


@dataclass
class RunPlan:
    run_name: str
    root: str
    input: str
    stages: list[StagePlan]
    config_yaml: str     # the effective config shipped to the cluster
    force: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def config_sha(self) -> str:
        return hashlib.sha256(self.config_yaml.encode()).hexdigest()[:12]

    @property
    def todo(self) -> list[StagePlan]:
        return [s for s in self.stages if not s.committed]


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the config inside a ConfigMap) as readable literal blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def dump_yaml(data, *, all_docs: bool = False) -> str:
    opts = dict(Dumper=_BlockDumper, sort_keys=False, width=10_000, allow_unicode=True)
    return yaml.dump_all(data, **opts) if all_docs else yaml.dump(data, **opts)


# --------------------------------------------------------------------------- targets

class Target(Protocol):
    """Where stages run: builds what is submitted (``describe`` prints it) and runs one stage to its end."""

    def describe(self, plan: RunPlan) -> str: ...

    def prepare(self, plan: RunPlan) -> None: ...

    def run_stage(self, plan: RunPlan, stage: StagePlan, is_committed: Callable[[], bool]) -> None: ...


def log(msg: str) -> None:
    print(redact(f"[submit] {msg}"), file=sys.stderr, flush=True)
