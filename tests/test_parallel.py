"""thread_map: in order, every item once, errors raised, a few futures whatever the input size."""

import concurrent.futures

import pytest

from earshot.parallel import thread_map


def test_thread_map_keeps_order_and_makes_a_future_per_chunk(monkeypatch):
    made = []
    real_submit = concurrent.futures.ThreadPoolExecutor.submit

    def counting_submit(self, *args, **kwargs):
        made.append(1)
        return real_submit(self, *args, **kwargs)

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "submit", counting_submit)
    items = list(range(10_000))
    assert thread_map(lambda x: x * 2, items, workers=2, chunk=256) == [x * 2 for x in items]
    assert len(made) == 40  # ceil(10,000 / 256), not 10,000
    assert thread_map(str, [1, 2], workers=4) == ["1", "2"]


def test_thread_map_raises_the_first_error():
    def f(x):
        if x == 700:
            raise ValueError("bad item 700")
        return x

    with pytest.raises(ValueError, match="bad item 700"):
        thread_map(f, list(range(1000)), workers=2, chunk=100)
