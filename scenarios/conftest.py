"""The acceptance scenarios of SCENARIOS.md, run against a whole cluster per test.

The harness's pytest plugin is loaded here (not through a pytest11 entry point), so it acts only
when scenarios run: `pytest scenarios/` writes reports/acceptance.html and its JSON twin.
Needs root, Debian's rabbitmq-server, openssh-server and chromium (for the screenshots);
TENGINE_SKIP_INTEGRATION=1 skips the scenarios instead of failing.
"""

pytest_plugins = ["harness.plugin"]
