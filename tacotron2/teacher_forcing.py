"""Teacher-forced decoding for training on a CPU, with its backward written out by hand.

Under autograd a teacher-forced decoder step records some sixty nodes, and the backward replays them one by one:
at batch 8 on a CPU that bookkeeping, the per-step weight gradients and the location convolution's small kernels
cost more than the arithmetic (docs/performance.md). Here the forward runs the decoder's step unrecorded (the
location convolution folded into its projection, as the inference engine does), keeping what the backward needs;
the backward walks the steps in reverse with the gradient formulas of the LSTM update, additive attention and
softmax, carrying only input gradients from step to step, and forms every weight's gradient once per sequence as
one product over all steps. The values are the decoder loop's (`Decoder.forward`) within float rounding, the
dropout masks drawn in the same order from the same generator (tests/test_teacher_forcing.py holds the outputs and
every gradient to autograd's).

Where it applies (`applies`): training on a CPU in float32 or under bfloat16 autocast (`--amp-run` there), where the
two LSTMs' products take bfloat16 weights cast once per sequence and everything else stays float32. Elsewhere the
decoder runs its own loop.
"""
import functools
from typing import List, NamedTuple, Tuple

import torch
from torch import nn

from common.cpu import lstm
from common.cpu.dropout import keep_mask
from common.cpu.cpu_features import onednn_trains_faster
from common.cpu.linear import linear, transposed
from common.precision import active_autocast_dtype
from tacotron2.folded_attention import folded_attention, folded_location_weight, location_features_backward


def applies(decoder: nn.Module, memory: torch.Tensor) -> bool:
    """Whether `decode` stands in for the decoder's loop here: gradients recorded for float32 weights, no autocast
    or bfloat16 autocast, on a CPU (`decoder.teacher_forcing_engine` None), on any device (True) or never (False:
    autograd's own loop)."""
    choice = decoder.teacher_forcing_engine
    device_type = memory.device.type
    return ((choice is True or (choice is None and device_type == "cpu")) and torch.is_grad_enabled()
            and active_autocast_dtype(device_type) in (None, torch.bfloat16)
            and all(p.dtype == torch.float32 and p.requires_grad for p in _parameters(decoder)))


def _parameters(decoder: nn.Module) -> List[torch.Tensor]:
    """The step's parameters, in the order `_Loop.apply` takes them."""
    att, dec, al = decoder.attention_rnn, decoder.decoder_rnn, decoder.attention_layer
    loc = al.location_layer
    return [att.weight_ih, att.weight_hh, att.bias_ih, att.bias_hh, dec.weight_ih, dec.weight_hh, dec.bias_ih,
            dec.bias_hh, al.query_layer.linear_layer.weight, loc.location_conv.conv.weight,
            loc.location_dense.linear_layer.weight, al.v.linear_layer.weight]


def decode(decoder: nn.Module, prenet_out: torch.Tensor, memory: torch.Tensor, processed_memory: torch.Tensor,
           pad_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The teacher-forced loop of `Decoder.forward`.

    Args:
        prenet_out: (B, steps, prenet_dim); memory: (B, T_in, E); processed_memory: (B, T_in, A); pad_mask: (B, T_in).
    Returns:
        [decoder output; context] per step (B, steps, H_dec + E), attention weights (B, steps, T_in).
    """
    p_att = decoder.p_attention_dropout if decoder.training else 0.0
    p_dec = decoder.p_decoder_dropout if decoder.training else 0.0
    # under bfloat16 autocast the LSTMs' products (most of a step's arithmetic) take bfloat16 weights, cast once per
    # sequence; states, attention and every weight gradient stay float32
    products = active_autocast_dtype(memory.device.type) or torch.float32
    # their kernels (common/cpu/linear.py): oneDNN's, or in float32 where MKL's are the faster
    onednn = decoder.teacher_forcing_onednn
    onednn = products != torch.float32 or (onednn_by_kind(decoder) if onednn is None else onednn)
    with torch.autocast(memory.device.type, enabled=False):
        return _Loop.apply((p_att, p_dec, products, onednn), prenet_out.float(), memory.float(),
                           processed_memory.float(), pad_mask, *_parameters(decoder))


def onednn_by_kind(decoder: nn.Module) -> bool:
    """The CPU kind's kernels for the float32 products (`cpu_features.onednn_trains_faster`): oneDNN's (True) or
    MKL's, by the larger LSTM matrix's size and the threads that multiply it."""
    largest = max(4 * (c.weight_ih.numel() + c.weight_hh.numel()) for c in (decoder.attention_rnn, decoder.decoder_rnn))
    return onednn_trains_faster(largest, torch.get_num_threads())


class _Step(NamedTuple):
    """What one step's backward reads."""
    xh_att: torch.Tensor  # (B, prenet + E + H_att) the attention LSTM's [input, h]
    att: lstm.Update
    att_c_prev: torch.Tensor  # (B, H_att)
    att_mask: torch.Tensor  # (B, H_att) dropout's scale or 0 (empty without dropout)
    weights_cat: torch.Tensor  # (B, 2, T_in) previous and cumulative attention weights
    hidden: torch.Tensor  # (B, A, T_in) the attention's tanh layer
    weights: torch.Tensor  # (B, T_in)
    xh_dec: torch.Tensor  # (B, H_att + E + H_dec) the decoder LSTM's [input, h]
    dec: lstm.Update
    dec_c_prev: torch.Tensor  # (B, H_dec)
    dec_mask: torch.Tensor  # (B, H_dec)


def _dropout_mask(shape: Tuple[int, ...], p: float) -> torch.Tensor:
    """common.cpu.dropout's mask as a multiplier (0 or 1 / (1 - p)), drawn as it draws it; empty for p = 0."""
    if not 0 < p < 1:
        return torch.empty(0)
    return keep_mask(shape, p) * (1.0 / (1.0 - p))


def _apply_mask(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x if mask.numel() == 0 else x * mask


def _split_dims(d_in: torch.Tensor, *sizes: int) -> List[torch.Tensor]:
    return list(d_in.split(list(sizes), dim=1))


class _Loop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, settings: Tuple[float, float, torch.dtype, bool], prenet_out: torch.Tensor, memory: torch.Tensor,
                processed_memory: torch.Tensor, pad_mask: torch.Tensor, att_w_ih: torch.Tensor,
                att_w_hh: torch.Tensor, att_b_ih: torch.Tensor, att_b_hh: torch.Tensor, dec_w_ih: torch.Tensor,
                dec_w_hh: torch.Tensor, dec_b_ih: torch.Tensor, dec_b_hh: torch.Tensor, query_W: torch.Tensor,
                conv_W: torch.Tensor, dense_W: torch.Tensor, v_W: torch.Tensor):
        B, steps, _ = prenet_out.shape
        H_att, H_dec = att_w_hh.size(1), dec_w_hh.size(1)
        p_att, p_dec, products, onednn = settings
        product = functools.partial(linear, onednn=onednn)
        att_W, att_b = torch.cat((att_w_ih, att_w_hh), 1).to(products), (att_b_ih + att_b_hh).to(products)
        dec_W, dec_b = torch.cat((dec_w_ih, dec_w_hh), 1).to(products), (dec_b_ih + dec_b_hh).to(products)
        loc_W = folded_location_weight(dense_W, conv_W)  # (A, 2, K)
        v = v_W[0]
        processed_t = processed_memory.transpose(1, 2).contiguous()  # (B, A, T_in)
        zeros = memory.new_zeros
        att_h, att_c, dec_h, dec_c = zeros(B, H_att), zeros(B, H_att), zeros(B, H_dec), zeros(B, H_dec)
        weights, weights_cum, context = zeros(B, memory.size(1)), zeros(B, memory.size(1)), zeros(B, memory.size(2))
        saved: List[_Step] = []
        outputs, alignments = [], []
        for t in range(steps):
            xh_att = torch.cat((prenet_out[:, t], context, att_h), 1)
            att = lstm.update_parts(product(xh_att.to(products), att_W, att_b).float(), att_c)  # gates (B, 4 H_att)
            att_mask = _dropout_mask(att.h.shape, p_att)
            weights_cat = torch.stack((weights, weights_cum), dim=1)
            query = _apply_mask(att.h, att_mask)  # the dropped-out attention LSTM output
            context, new_weights, hidden = folded_attention(product(query, query_W), memory, processed_t, weights_cat,
                                                            pad_mask, loc_W, v)
            xh_dec = torch.cat((query, context, dec_h), 1)
            dec = lstm.update_parts(product(xh_dec.to(products), dec_W, dec_b).float(), dec_c)  # gates (B, 4 H_dec)
            dec_mask = _dropout_mask(dec.h.shape, p_dec)
            saved.append(_Step(xh_att, att, att_c, att_mask, weights_cat, hidden, new_weights, xh_dec, dec, dec_c,
                               dec_mask))
            att_h, att_c, dec_h, dec_c = query, att.c, _apply_mask(dec.h, dec_mask), dec.c
            weights, weights_cum = new_weights, weights_cum + new_weights
            outputs.append(torch.cat((dec_h, context), 1))
            alignments.append(new_weights)
        ctx.saved = saved
        ctx.weights = (att_W, dec_W, loc_W, v, query_W, conv_W, dense_W)
        ctx.onednn = onednn
        ctx.save_for_backward(memory)
        return torch.stack(outputs, 1), torch.stack(alignments, 1)

    @staticmethod
    def backward(ctx, d_outputs: torch.Tensor, d_alignments: torch.Tensor):
        (memory,) = ctx.saved_tensors
        saved: List[_Step] = ctx.saved
        att_W, dec_W, loc_W, v, query_W, conv_W, dense_W = ctx.weights
        B, steps, _ = d_outputs.shape
        T_in, E = memory.shape[1:]
        H_att, H_dec = saved[0].att.h.size(1), saved[0].dec.h.size(1)
        P = saved[0].xh_att.size(1) - E - H_att
        pad = loc_W.size(2) // 2
        zeros = memory.new_zeros
        # the input gradients' products as (B, out) x (out, in), through the forward's kernels
        product = functools.partial(linear, onednn=ctx.onednn)
        att_W_t, dec_W_t, query_W_t = (transposed(w, ctx.onednn) for w in (att_W, dec_W, query_W))
        # gradients reaching the state that step t leaves, carried backwards
        d_att_h, d_att_c, d_dec_h, d_dec_c = zeros(B, H_att), zeros(B, H_att), zeros(B, H_dec), zeros(B, H_dec)
        d_weights, d_weights_cum, d_context = zeros(B, T_in), zeros(B, T_in), zeros(B, E)
        d_prenet = []
        d_att_gates, d_dec_gates, d_queries, d_hidden_pre, d_energies, d_contexts = [], [], [], [], [], []
        for t in reversed(range(steps)):
            s = saved[t]
            d_out_h, d_out_context = _split_dims(d_outputs[:, t], H_dec, E)
            d_dec_h = d_dec_h + d_out_h
            d_context = d_context + d_out_context
            # the decoder LSTM
            d_gates, d_dec_c = lstm.update_backward(_apply_mask(d_dec_h, s.dec_mask), d_dec_c, s.dec, s.dec_c_prev)
            d_dec_gates.append(d_gates)
            d_query, d_context_in, d_dec_h = _split_dims(product(d_gates.to(dec_W_t.dtype), dec_W_t).float(),
                                                         H_att, E, H_dec)
            d_context = d_context + d_context_in
            d_contexts.append(d_context)
            # context = weights @ memory; the weights also feed the cumulative sum and the next step's location
            d_w = d_alignments[:, t] + d_weights + d_weights_cum + (memory * d_context[:, None, :]).sum(2)
            d_e = s.weights * (d_w - (d_w * s.weights).sum(1, keepdim=True))  # softmax; 0 at padded positions
            d_energies.append(d_e)
            d_pre = (v[None, :, None] * d_e[:, None, :]) * (1 - s.hidden * s.hidden)  # (B, A, T_in)
            d_hidden_pre.append(d_pre)
            d_q = d_pre.sum(2)  # (B, A)
            d_queries.append(d_q)
            d_cat = location_features_backward(d_pre, loc_W)  # (B, 2, T_in)
            d_weights, d_weights_cum = d_cat[:, 0], d_weights_cum + d_cat[:, 1]
            # the attention LSTM: its (dropped-out) output fed the query, the decoder LSTM and the next step
            d_att_h = d_att_h + d_query + product(d_q, query_W_t)
            d_gates, d_att_c = lstm.update_backward(_apply_mask(d_att_h, s.att_mask), d_att_c, s.att, s.att_c_prev)
            d_att_gates.append(d_gates)
            d_p, d_context, d_att_h = _split_dims(product(d_gates.to(att_W_t.dtype), att_W_t).float(), P, E, H_att)
            d_prenet.append(d_p)
        d_prenet.reverse()
        for grads in (d_att_gates, d_dec_gates, d_queries, d_hidden_pre, d_energies, d_contexts):
            grads.reverse()
        # the weights' gradients, one product over all steps each
        G_att, G_dec = torch.cat(d_att_gates), torch.cat(d_dec_gates)  # (steps * B, 4H)
        d_att_W = G_att.t() @ torch.cat([s.xh_att for s in saved])
        d_dec_W = G_dec.t() @ torch.cat([s.xh_dec for s in saved])
        d_att_b, d_dec_b = G_att.sum(0), G_dec.sum(0)
        queries = torch.cat([s.xh_dec[:, :H_att] for s in saved])  # the dropped-out attention LSTM outputs
        d_query_W = torch.cat(d_queries).t() @ queries  # (A, steps * B) x (steps * B, H_att)
        D_pre = torch.cat(d_hidden_pre)  # (steps * B, A, T_in)
        d_loc_W = torch.nn.grad.conv1d_weight(torch.cat([s.weights_cat for s in saved]), loc_W.shape, D_pre,
                                              padding=pad)  # (A, 2, K)
        d_dense_W = torch.einsum("ack,fck->af", d_loc_W, conv_W)
        d_conv_W = torch.einsum("ack,af->fck", d_loc_W, dense_W)
        hidden = torch.stack([s.hidden for s in saved])  # (steps, B, A, T_in)
        d_v = torch.einsum("sbat,sbt->a", hidden, torch.stack(d_energies))[None]  # (1, A)
        # memory: through every step's context; processed memory: through every step's tanh layer
        alignments = torch.stack([s.weights for s in saved], 2)  # (B, T_in, steps)
        d_memory = torch.bmm(alignments, torch.stack(d_contexts, 1))  # (B, T_in, steps) x (B, steps, E)
        d_processed = D_pre.view(steps, B, *D_pre.shape[1:]).sum(0).transpose(1, 2)  # (B, T_in, A)
        n_att = att_W.size(1) - H_att
        n_dec = dec_W.size(1) - H_dec
        return (None, torch.stack(d_prenet, 1), d_memory, d_processed, None,
                d_att_W[:, :n_att].contiguous(), d_att_W[:, n_att:].contiguous(), d_att_b, d_att_b.clone(),
                d_dec_W[:, :n_dec].contiguous(), d_dec_W[:, n_dec:].contiguous(), d_dec_b, d_dec_b.clone(),
                d_query_W, d_conv_W, d_dense_W, d_v)
