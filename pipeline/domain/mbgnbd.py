"""The modified BG/NBD (Batislam, Denizel & Filiztekin 2007): a customer may drop out after
any purchase, the first included, so a one-time buyer is not alive for sure.

Its likelihood, P(alive) and expectations are the BG/NBD's with the dropout Beta shifted by
one purchase (b + 1 where the BG/NBD has b, and the dropout term for x = 0 too):

    L = Gamma(r+x) alpha^r / Gamma(r) * B(a, b+x+1) / B(a, b)
        * [(alpha+T)^-(r+x) + a / (b+x) * (alpha+t_x)^-(r+x)]
    P(alive) = 1 / (1 + a / (b+x) * ((alpha+T) / (alpha+t_x))^(r+x))
    E[X(T, T+t)] = P(alive) * (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x)
                   2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))]

The last is the BG/NBD's conditional expectation of an alive customer with b + 1, which
`btyd` computes (finite and right over its accepted box).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import betaln, gammaln

if TYPE_CHECKING:
    from pipeline.domain.btyd import Array, _BgNbdData

VARIANTS = ("bgnbd", "mbgnbd")


def mbgnbd_ll(r: float, alpha: float, a: float, b: float, d: _BgNbdData) -> Array:
    """Per-customer log-likelihood of the modified BG/NBD, in log space."""
    xu = d.x_unique
    by_x = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu + 1) - betaln(a, b)
    x = d.x
    alive = -(r + x) * np.log(alpha + d.T)
    dead = np.log(a / (b + x)) - (r + x) * np.log(alpha + d.t_x)
    return by_x[d.x_index] + np.logaddexp(alive, dead)  # type: ignore[no-any-return]
