"""Models: pure single-example functions over NamedTuple parameters. Batch with `jax.vmap`.

THE MATRIX CONVENTION (one orientation, used by every model of the sandbox)
-------------------------------------------------------------------------
* Tokens are the ROWS of Z, shape (T, D). A weight matrix acts on one token as a COLUMN vector z.
* Attention score of query token i on key token j:   s_ij = z_j^T W_KQ z_i
  (for a whole sequence: S = Z W_KQ^T Z^T; in factored form W_KQ = W_K W_Q^T, so
  s_ij = (W_Q^T z_i) . (W_K^T z_j)). Softmax runs over the keys j (along a row of S).
* Value written into token i:   dz_i = sum_j a_ij W_PV z_j     (rows: dZ = A Z W_PV^T);
  in factored form W_PV = W_O W_V^T (the OV circuit; one name, W_PV, everywhere).
* Models take arrays (tokens, positions, masks), never a task's containers; tasks turn their
  samples into arrays (e.g. `theory.tasks.linear_regression.tokens`).

Modules
-------
  lsa              linear self-attention stacks (von Oswald et al. 2023) and the softmax control
  single_attention one softmax attention layer on token selection, W or (W_K, W_Q) (Tarzanagh et al.)
  factored         product parametrisations: linear nets, diagonal and full attention heads (Saxe;
                   Boix-Adsera et al.)
  yz_attention     the (Y, Z) one-layer model of Tian et al. 2023 (scan and snap)
  transformer      the encoder/decoder transformer of the algorithmic tasks (Ruoss et al. 2023)
  positional       positional encodings: sin/cos, learned, relative, RoPE, ALiBi, randomized; coupled
                   and Abacus position ids of addition (Cho et al. 2024; McLeish et al. 2024)
  quadratic_mlp    the 2p -> N -> p MLP with x^2 activation of modular addition (Gromov 2023)
  relu_transformer the one-layer ReLU transformer of Nanda et al. 2023 (no LayerNorm; last-row forward)
  adder            a hand-set one-layer transformer that adds over coupled position ids (arithmetic)
  associative_memory  a linear associative memory u_y^T W e_x and its one gradient step (Bietti et al. 2023)
  induction_transformer  Bietti et al.'s two-layer attention-only transformer with frozen embeddings
"""
