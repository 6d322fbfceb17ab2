"""Editing saved `.keras` files, for tests of what loaders do with them."""

import json
import zipfile


def rewrite_config(source, target, edit):
    """Copies the `.keras` file `source` to `target`, with `edit(config)`
    applied to its parsed `config.json`; returns `target`."""
    with zipfile.ZipFile(source) as archive_in, zipfile.ZipFile(target, "w") as archive_out:
        for info in archive_in.infolist():
            data = archive_in.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            archive_out.writestr(info, data)
    return target
