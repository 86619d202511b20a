"""The README's examples run as written."""
import os
import re

import numpy as np

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def _example(title):
    text = open(README, encoding="utf-8").read()
    m = re.search(r"<!-- README example: " + re.escape(title) + r".*?-->\s*```python\n(.*?)```",
                  text, re.S)
    assert m, f"README example {title!r} not found"
    return m.group(1)


def test_400_stocks_example():
    scope = {}
    exec(compile(_example("400 stocks"), "README.md", "exec"), scope)
    model, streams, handles = scope["model"], scope["streams"], scope["handles"]
    assert streams.batch_size == 400 and len(handles) == 400
    assert scope["y"].shape[0] == 3 and np.isfinite(scope["y"]).all()
    assert scope["forecast"].shape == (1, 10, 1)
    # stock 17 restarted at tick 20: its state equals a fresh stream fed ticks 20.. only
    ticks = scope["ticks"]
    fresh = model.new_state(1)
    for tick in ticks[20:]:
        model.predict(tick[17:18, None, :], state=fresh)
    name = fresh.layer_names[0]
    np.testing.assert_allclose(streams.as_dict()[name][1][17], fresh.as_dict()[name][1][0],
                               atol=1e-6)
