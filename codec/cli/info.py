"""``lic info``: what a ``.lic`` file holds, from its header, without decoding it (nor torch)."""

from __future__ import annotations

import json

import bitstream
from bitstream import LicFormatError

from .errors import CliError
from .inputs import read_input, shown

__all__ = ["cmd_info"]


def cmd_info(args) -> int:
    data = read_input(args.input)
    try:
        header, streams, alpha = bitstream.unpack(data)
    except LicFormatError as e:
        raise CliError(f"{shown(args.input)}: {e}") from None
    pixels = header.width * header.height
    exact = isinstance(header, bitstream.ResidualHeader)  # lossless or near-lossless: no quality, no model
    report = {
        "file": args.input, "width": header.width, "height": header.height,
        "channels": header.channels, "quality": None if exact else header.quality,
        "model_id": header.model_id, "model_hash": None if exact else header.model_hash.hex(),
        "bytes": len(data), "bpp": len(data) * 8 / pixels,
        "icc_bytes": len(header.icc) if header.icc else 0,
        "alpha_bytes": len(alpha) if alpha is not None else 0,
        "streams": len(streams),
    }
    if exact:
        report.update(bits=header.residual.bits, max_error=header.residual.max_error)
    if args.json:
        print(json.dumps(report))
    else:
        coder = (f"{header.residual.bits}-bit samples, max error {header.residual.max_error}, coder {header.model_id}"
                 if exact else f"quality {header.quality:g}, model {header.model_id} ({report['model_hash']})")
        print(f"{args.input}: {header.width}x{header.height} {header.channels}, {coder}, "
              f"{len(data):,} bytes, {report['bpp']:.4f} bpp"
              + (f", ICC {report['icc_bytes']:,} bytes" if header.icc else "")
              + (f", alpha {report['alpha_bytes']:,} bytes" if alpha is not None else ""))
    return 0
