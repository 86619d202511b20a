"""Functions that multiprocessing's spawn start method imports by name in its workers
(tests/test_processes.py)."""
import fastlstm


def spawn_work():
    """The threads and fork state a spawned worker sees."""
    return fastlstm.get_num_threads(), fastlstm.build_info()["fork_serial"]
