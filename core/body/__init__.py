"""Body models behind one interface: SMPL-X-layout parameters in, vertices and named joints out."""
