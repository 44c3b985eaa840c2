"""torch's CPU bfloat16 autocast, reproduced in an ONNX graph that computes in float32.

g_a trains under bf16 autocast (``train/train.py``) and the torch runtime encodes with it there
(``torch_transforms.py``), so the latents that training tuned the rate-distortion for are bf16
ones.  ONNX Runtime's CPU engine has no bf16 convolutions; instead the graph keeps every operation
in float32 and rounds each value to bf16 where autocast holds it in bf16, with a Cast to bfloat16
and back (round to nearest even, as torch).  Where torch's CPU autocast puts g_a's operations
(a dispatch log of ``model.g_a`` under ``torch.autocast("cpu", torch.bfloat16)``, torch 2.14):

    conv2d        input, weight and bias cast to bf16; sums in float32; output bf16
    x · x, x · r  GDN's square and its product with r: bf16 in, bf16 out
    r = rsqrt(n)  bf16 in, bf16 out (one rounding; exported as Div(1, Sqrt(n)))
    β, γ          GDN's reparametrisation in float32; the conv that takes them casts them to bf16

A product of two bf16 numbers is exact in float32 and a bf16 convolution sums in float32 (oneDNN),
so the emulation differs from torch only where the order of summation tips a rounding: on Kodak
most latents come out bit-identical to torch's (``benchmarks/results/runtime.md``).  Rounding the
weights costs nothing per run (ONNX Runtime folds constants when it loads the graph); each rounded
activation costs one pass over it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["round_as_bf16_autocast"]

ROUNDED = {"Conv", "Mul", "Div"}  # operations whose output autocast holds in bf16
LAYOUT = {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Identity", "Constant"}  # values unchanged


def round_as_bf16_autocast(model, activations: bool = True):
    """Round ``model``'s (an ``onnx.ModelProto``) values to bf16 where torch's CPU autocast does, in place;
    returns it.  ``activations=False`` rounds only what autocast casts from outside: the graph's input and
    the convolutions' weights and biases (folded at load, so free per run).  ``ValueError`` for an
    operation on the input's path that has no rule here, so that a change of architecture cannot
    silently compute in another precision than torch's."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                 if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    scalars = {name for name, value in constants.items() if value.size == 1}
    scalars |= {t.name for t in graph.initializer if int(np.prod(t.dims)) == 1}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    inputs = {i.name for i in graph.input}
    on_path = set(inputs)  # values that depend on the image
    nodes, rounded, renamed = [], {}, {}

    def rounding(name: str, result: str | None = None) -> str:
        """The name of ``name`` rounded to bf16 (a Cast pair, made once)."""
        if name in rounded.values():
            return name
        if name not in rounded:
            to_bf16 = f"{name}/bf16"
            rounded[name] = result or f"{to_bf16}/float"
            nodes.append(helper.make_node("Cast", [name], [to_bf16], name=to_bf16, to=TensorProto.BFLOAT16))
            nodes.append(helper.make_node("Cast", [to_bf16], [rounded[name]], name=rounded[name], to=TensorProto.FLOAT))
        return rounded[name]

    for node in graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        image_path = any(n in on_path for n in node.input)
        if node.op_type == "Conv":  # autocast casts all three inputs
            node.input[:] = [rounding(n) if n and (activations or k > 0 or n in inputs) else n
                             for k, n in enumerate(node.input)]
        if not image_path:
            nodes.append(node)
            continue
        on_path.update(node.output)
        if node.op_type == "Sqrt" and not _is_rsqrt(node, consumers, constants):
            raise ValueError(f"bf16 autocast: {node.name} is a square root outside rsqrt, which has no rule here")
        if node.op_type not in ROUNDED | LAYOUT | {"Sqrt"}:
            raise ValueError(f"bf16 autocast: no rule for {node.op_type} ({node.name})")
        if node.op_type not in ROUNDED:
            nodes.append(node)
            continue
        if node.op_type != "Conv" and not all(n in on_path or n in scalars for n in node.input):
            # bf16 times a float32 tensor is float32 under autocast (type promotion): not this rule
            raise ValueError(f"bf16 autocast: {node.name} mixes the image's values with a tensor of weights")
        (out,) = node.output
        if not activations:
            nodes.append(node)
            continue
        if out in outputs:  # the graph's output keeps its name, on the rounded value
            node.output[:] = [f"{out}/float32"]
            nodes.append(node)
            rounding(node.output[0], result=out)
        else:
            nodes.append(node)
            renamed[out] = rounding(out)
        on_path.update(rounded.values())
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _is_rsqrt(sqrt, consumers: dict, constants: dict) -> bool:
    """Whether every use of ``sqrt``'s output is 1 / it: torch's rsqrt, one bf16 rounding after the Div."""
    (out,) = sqrt.output
    uses = consumers.get(out, [])
    return bool(uses) and all(u.op_type == "Div" and list(u.input) == [u.input[0], out]
                              and u.input[0] in constants and constants[u.input[0]].size == 1
                              and float(constants[u.input[0]]) == 1.0 for u in uses)
