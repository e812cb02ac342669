"""Geometry: the Dwork hypersurfaces, points on them, sigma and kappa, and FS distances.

  manifolds  the Dwork family of hypersurfaces in P^(d-1)
  points     sampling points with their charts, weights and g_FS
  measures   eta, kappa, sigma (B.11) with standard errors
  reference  the one reference kappa per manifold (closed form, or a stored estimate)
  distance   Fubini-Study distances and neighbour search
"""
