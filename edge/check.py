"""`gridwatch edge check`: an agent's configuration checked without connecting anywhere.

The agent config itself (feeds expanded, devices), the rule file it names (compiled as the agent would),
the TLS files (broker CA and client certificate, the hub's CA) and the outbox's directory. Secrets named by
`password_env` / `key_env` that are not set in this environment are warnings: under systemd they come from
the unit's EnvironmentFile, which a shell check may not see.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge.config import EdgeConfig, load_edge_config
from edge.rules.loader import load_rules
from gridwatch.core.findings import Findings
from gridwatch.core.yamlconf import problem, read_yaml


def check_edge(path: Path) -> tuple[Findings, EdgeConfig | None]:
    f = Findings()
    cfg = f.load(lambda: load_edge_config(path))
    if cfg is None:
        return f, None
    f.checked.append(f"{path} ({len(cfg.feed_specs())} feeds, {len(cfg.devices.known)} devices)")
    rules = f.load(lambda: load_rules(cfg.rules))
    if rules is not None:
        from edge.rules.ruleset import RuleSet

        try:
            RuleSet(rules)
        except ValueError as exc:
            f.errors.append(f"{cfg.rules}: {exc}")
        else:
            f.checked.append(f"{cfg.rules} ({len(rules.rules)} rules)")
    src = read_yaml(path)[1]
    wanted: list[tuple[tuple[str, ...], Path | None]] = [(("hub", "ca_file"), cfg.hub.ca_file)]
    if cfg.mqtt.tls is not None:
        t = cfg.mqtt.tls
        wanted += [(("mqtt", "tls", "ca_file"), t.ca_file), (("mqtt", "tls", "cert_file"), t.cert_file),
                   (("mqtt", "tls", "key_file"), t.key_file)]
    f.files(path, src, wanted)
    if not cfg.outbox.path.parent.is_dir():
        f.errors.append(problem(path, src, ("outbox", "path"), f"{cfg.outbox.path.parent}: no such directory"))
    for loc, env, plain in ((("mqtt", "password_env"), cfg.mqtt.password_env, cfg.mqtt.password),
                            (("hub", "key_env"), cfg.hub.key_env, cfg.hub.key)):
        if env and not plain and "{" not in env and not os.environ.get(env):
            f.warnings.append(problem(path, src, loc, f"${env} is not set here (the service's environment file "
                                                      f"must set it)"))
    return f, cfg
