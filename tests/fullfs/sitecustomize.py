"""A full disk for the collector processes the disk-full tests start (put on PYTHONPATH).

While the file named by $CCL_TEST_DISK_FULL exists, every fsync fails with ENOSPC, which is how a
full ext4 or XFS reports the blocks it could not allocate for data already written. The test
creates the file to fill the disk and deletes it to free space. Not loaded anywhere else.
"""

import errno
import os

_flag = os.environ.get("CCL_TEST_DISK_FULL")
if _flag:
    _fsync = os.fsync

    def _fsync_on_a_full_disk(fd):
        if os.path.exists(_flag):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _fsync(fd)

    os.fsync = _fsync_on_a_full_disk
