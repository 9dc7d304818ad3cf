"""Repository-wide pytest options: ``--long`` enables the tests marked ``long``.

``make test`` runs ``-m "not long"``; ``make test-long`` passes ``--long``.  Without ``--long``
the long tests are deselected (not skipped), so a plain ``pytest`` run stays short too.
"""


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="run the long regression (tests marked @pytest.mark.long)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--long"):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("long") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
