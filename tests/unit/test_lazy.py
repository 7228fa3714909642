import threading

from stage1.core.lazy import lazy


def test_built_once_across_threads_and_reset_returns_the_old_value():
    calls = []

    @lazy
    def make() -> object:
        calls.append(1)
        return object()

    seen = []
    threads = [threading.Thread(target=lambda: seen.append(make())) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(v) for v in seen}) == 1
    old = make.reset()
    assert old is seen[0]
    assert make() is not old and len(calls) == 2
    assert make.__name__ == "make"
