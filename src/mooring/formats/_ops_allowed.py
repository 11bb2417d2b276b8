"""The ops an imported model may run: computation on tensors, each with its reason.

An allow-list, not a deny-list: an op TensorFlow adds, or one a deny-list forgot, is
refused until it is reviewed and listed here (or admitted for one model with
``--allow-op OP -r REASON``). The list was collected by exporting a corpus of real
models and walking them with the vetting's own walk (``benchmarks/bench_op_corpus.py``:
every Keras 3 layer family and preprocessing layer, Keras applications, networks
written with plain TensorFlow, YDF's inference, mooring's own exports), and kept to
ops that compute on tensors in the process: none opens a file, a socket or another
process, calls Python, or runs a program carried in a string. Ops near the corpus's
that a network written by hand commonly uses (the other element-wise functions, the
other image resizers) are listed beside them, grouped by family.

Some listed ops are checked further by the vetting: the allocations sized by constants
(``ALLOCATIONS``), the function calls (their functions are walked). Reading a model's
own vocabulary file and its saver's checkpoint ops are checked where they are used and
are not on this list.

Examples:
    >>> ALLOWED_OPS["MatMul"]
    'arithmetic and linear algebra on tensors'
    >>> "ReadFile" in ALLOWED_OPS
    False
"""

from __future__ import annotations

__all__ = ["ALLOWED_OPS", "FAMILIES"]

_ARITHMETIC = "element-wise arithmetic on tensors"
_MATH = "an element-wise mathematical function of tensors"
_COMPARE = "compares or combines tensors element-wise (booleans)"
_REDUCE = "reduces a tensor along its axes"
_SCAN = "a cumulative sum or product along an axis"
_LINALG = "arithmetic and linear algebra on tensors"
_DECOMPOSE = "a matrix decomposition or solve on tensors"
_NN = "a neural-network layer's computation (convolution, pooling, activation, normalization)"
_GRAD = "the gradient of a layer's computation (saliency, explanations in the graph)"
_SHAPE = "reshapes, slices, joins, pads or reorders a tensor"
_INDEX = "selects, gathers or scatters elements of a tensor by index"
_SORT = "sorts, ranks or counts the values of a tensor"
_MAKE = "makes a tensor of a given shape (its size checked when it is a constant)"
_CAST = "converts a tensor's values to another type"
_CONTROL = "control flow within the graph; the functions it runs are vetted too"
_CALL = "calls one of the model's own functions, which are vetted too"
_STRUCTURE = "a graph's own structure: its inputs, outputs, constants and control edges"
_VARIABLE = "reads or writes one of the model's own variables (its weights, counters)"
_LIST = "a list of tensors within one call (a loop's intermediate values)"
_TABLE = "a lookup table of the model's own, filled from constants or its own assets"
_STRING = "computes on strings held in tensors"
_REGEX = "matches or replaces a regular expression (RE2) in strings held in tensors"
_HASH = "hashes strings or crosses features into buckets"
_SPARSE = "computes on sparse or ragged tensors"
_RANDOM = "draws random numbers (dropout or noise, seeded or stateless); sizes checked"
_SIGNAL = "a Fourier transform or complex arithmetic on tensors"
_IMAGE = "decodes, resizes or adjusts images held in tensors"
_CHECK = "checks a tensor's values and fails the call when they are wrong"
_SAVER_NAMES = "builds the checkpoint file names of the model's own saver (strings only)"
_YDF = "YDF's tree inference on a model loaded from the model's own assets (ydf_tf)"

#: The ops an imported model may hold, family by family: ``{family: {op: reason}}``.
FAMILIES: dict[str, dict[str, str]] = {
    "arithmetic": {
        op: _ARITHMETIC
        for op in (
            "Abs", "Add", "AddN", "AddV2", "BiasAdd", "Div", "DivNoNan", "Floor", "FloorDiv",
            "FloorMod", "Maximum", "Minimum", "Mod", "Mul", "MulNoNan", "Neg", "RealDiv",
            "Reciprocal", "Sign", "Square", "SquaredDifference", "Sub", "TruncateDiv",
            "TruncateMod", "Ceil", "Rint", "Round", "ClipByValue",
        )
    },
    "mathematical functions": {
        op: _MATH
        for op in (
            "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atan2", "Atanh", "Cos", "Cosh",
            "Digamma", "Erf", "Erfc", "Erfinv", "Exp", "Expm1", "Lgamma", "Log", "Log1p",
            "Ndtri", "Pow", "Rsqrt", "Sigmoid", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt",
            "Tan", "Tanh", "Xdivy", "Xlog1py", "Xlogy", "Igamma", "Igammac", "Betainc",
            "Polygamma", "Zeta",
        )
    },
    "comparison and logic": {
        op: _COMPARE
        for op in (
            "Equal", "Greater", "GreaterEqual", "Less", "LessEqual", "NotEqual",
            "ApproximateEqual", "LogicalAnd", "LogicalNot", "LogicalOr", "IsFinite", "IsInf",
            "IsNan", "Select", "SelectV2", "Where", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
            "Invert", "LeftShift", "RightShift",
        )
    },
    "reductions": {
        op: _REDUCE
        for op in ("All", "Any", "ArgMax", "ArgMin", "Max", "Mean", "Min", "Prod", "Sum",
                   "EuclideanNorm")
    },
    "cumulative": {op: _SCAN for op in ("Cumsum", "Cumprod", "CumulativeLogsumexp")},
    "linear algebra": {
        op: _LINALG
        for op in (
            "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Cross", "Einsum", "MatMul",
            "MatrixBandPart", "MatrixDiag", "MatrixDiagPart", "MatrixDiagPartV2",
            "MatrixDiagPartV3", "MatrixDiagV2", "MatrixDiagV3", "MatrixSetDiag",
            "MatrixSetDiagV2", "MatrixSetDiagV3", "Diag", "DiagPart",
        )
    },
    "matrix decompositions": {
        op: _DECOMPOSE
        for op in (
            "Cholesky", "LogMatrixDeterminant", "MatrixDeterminant", "MatrixInverse",
            "MatrixSolve", "MatrixSolveLs", "MatrixTriangularSolve", "Qr", "SelfAdjointEigV2",
            "Svd", "Lu", "MatrixExponential", "MatrixLogarithm", "MatrixSquareRoot",
        )
    },
    "neural-network layers": {
        op: _NN
        for op in (
            "AvgPool", "AvgPool3D", "Conv2D", "Conv3D", "Conv2DBackpropInput",
            "Conv3DBackpropInputV2", "Conv", "DepthwiseConv2dNative", "Dilation2D", "Elu",
            "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "LRN", "LeakyRelu",
            "LogSoftmax", "MaxPool", "MaxPoolV2", "MaxPool3D", "MaxPoolWithArgmax", "Relu",
            "Relu6", "Selu", "Softmax", "InTopKV2", "TopKV2",
        )
    },
    "gradients": {
        op: _GRAD
        for op in (
            "BroadcastGradientArgs", "ReluGrad", "Relu6Grad", "EluGrad", "SeluGrad",
            "LeakyReluGrad", "SigmoidGrad", "TanhGrad", "SoftplusGrad", "SoftsignGrad",
            "RsqrtGrad", "SqrtGrad", "ReciprocalGrad", "BiasAddGrad", "MaxPoolGrad",
            "MaxPoolGradV2", "AvgPoolGrad", "Conv2DBackpropFilter", "FusedBatchNormGradV3",
            "MaxPool3DGrad", "AvgPool3DGrad", "Conv3DBackpropFilterV2",
            "DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter",
            # The gradients of the other layers and shape ops on this list: what
            # integrated gradients through any of them (a served explain signature) runs.
            "ConcatOffset", "StridedSliceGrad", "TileGrad", "InvGrad", "MirrorPadGrad",
            "Conv2DBackpropInput", "Conv2DBackpropInputV2", "Conv2DBackpropFilterV2",
            "Conv3DBackpropInput", "Conv3DBackpropInputV2", "Conv3DBackpropFilter",
            "MaxPoolGradGrad", "MaxPoolGradGradV2", "MaxPoolGradWithArgmax",
            "MaxPoolGradGradWithArgmax", "MaxPool3DGradGrad", "FusedBatchNormGrad",
            "FusedBatchNormGradV2", "ResizeBilinearGrad", "ResizeNearestNeighborGrad",
            "ResizeBicubicGrad", "SparseSegmentSumGrad", "SparseSegmentSumGradV2",
            "SparseSegmentMeanGrad", "SparseSegmentMeanGradV2", "SparseSegmentSqrtNGrad",
            "SparseSegmentSqrtNGradV2", "SparseFillEmptyRowsGrad", "SparseAddGrad",
            "SparseSliceGrad", "RaggedFillEmptyRowsGrad", "LRNGrad", "IgammaGradA",
            "RandomGammaGrad",
        )
    },
    "shapes": {
        op: _SHAPE
        for op in (
            "BatchToSpaceND", "BroadcastArgs", "BroadcastTo", "ConcatV2", "Concat",
            "DepthToSpace", "ExpandDims", "MirrorPad", "Pack", "Pad", "PadV2", "Rank",
            "Reshape", "ReverseV2", "Shape", "ShapeN", "Size", "Slice", "SpaceToBatchND",
            "SpaceToDepth", "Split", "SplitV", "Squeeze", "StridedSlice", "Tile", "Transpose",
            "Unpack", "ConjugateTranspose", "EnsureShape", "Roll", "ExtractImagePatches",
        )
    },
    "indexing": {
        op: _INDEX
        for op in (
            "Gather", "GatherNd", "GatherV2", "OneHot", "ScatterNd", "TensorScatterAdd",
            "TensorScatterUpdate", "TensorScatterMax", "TensorScatterMin", "TensorScatterSub",
            "UnsortedSegmentSum", "UnsortedSegmentMax", "UnsortedSegmentMin",
            "UnsortedSegmentProd", "SegmentSum", "SegmentMean", "SegmentMax", "SegmentMin",
            "SegmentProd", "SparseSegmentSum", "SparseSegmentMean", "SparseSegmentSqrtN",
            "ResourceGather", "InvertPermutation", "ListDiff", "LowerBound", "UpperBound",
        )
    },
    "sorting and counting": {
        op: _SORT
        for op in (
            "Bincount", "Bucketize", "DenseBincount", "RaggedBincount", "SparseBincount",
            "HistogramFixedWidth", "Unique", "UniqueV2", "UniqueWithCounts", "NthElement",
        )
    },
    "making tensors": {
        op: _MAKE
        for op in ("Empty", "Fill", "LinSpace", "OnesLike", "Range", "ZerosLike")
    },
    "type conversion": {op: _CAST for op in ("Cast", "Bitcast", "Complex", "Real", "Imag",
                                             "ComplexAbs", "Angle", "Conj")},
    "control flow": {
        op: _CONTROL
        for op in (
            "Case", "If", "StatelessCase", "StatelessIf", "StatelessWhile", "While",
            "Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond",
            "ControlTrigger",
        )
    },
    "function calls": {
        op: _CALL for op in ("PartitionedCall", "StatefulPartitionedCall")
    },
    "graph structure": {
        op: _STRUCTURE
        for op in (
            "Const", "HostConst", "Identity", "IdentityN", "NoOp", "Placeholder",
            "PlaceholderWithDefault", "PreventGradient", "Snapshot", "StopGradient", "_Arg",
            "_Retval", "OptionalFromValue", "OptionalGetValue", "OptionalHasValue",
            "OptionalNone",
        )
    },
    "variables": {
        op: _VARIABLE
        for op in (
            "AssignAddVariableOp", "AssignSubVariableOp", "AssignVariableOp",
            "DisableCopyOnRead", "ReadVariableOp", "VarHandleOp",
            "VarIsInitializedOp", "VariableShape", "Variable", "VariableV2", "Assign",
            "AssignAdd", "AssignSub", "IsVariableInitialized",
        )
    },
    "tensor lists and arrays": {
        op: _LIST
        for op in (
            "EmptyTensorList", "TensorListConcatV2", "TensorListElementShape",
            "TensorListFromTensor", "TensorListGather", "TensorListGetItem",
            "TensorListLength", "TensorListPopBack", "TensorListPushBack",
            "TensorListReserve", "TensorListResize", "TensorListScatterIntoExistingList",
            "TensorListScatterV2", "TensorListSetItem", "TensorListSplit", "TensorListStack",
            "TensorArrayV3", "TensorArrayWriteV3", "TensorArrayReadV3", "TensorArrayGatherV3",
            "TensorArrayScatterV3", "TensorArraySizeV3", "TensorArrayConcatV3",
            "TensorArraySplitV3", "TensorArrayCloseV3",
        )
    },
    "lookup tables": {
        op: _TABLE
        for op in (
            "HashTableV2", "InitializeTableV2", "LookupTableFindV2", "LookupTableImportV2",
            "LookupTableSizeV2", "LookupTableExportV2", "LookupTableInsertV2",
            "LookupTableRemoveV2", "MutableHashTableV2", "MutableHashTableOfTensorsV2",
            "MutableDenseHashTableV2", "AnonymousHashTable", "AnonymousMutableHashTable",
        )
    },
    "strings": {
        op: _STRING
        for op in (
            "AsString", "ReduceJoin", "StringFormat", "StringJoin", "StringLength",
            "StringLower", "StringNGrams", "StringSplit", "StringSplitV2", "StringStrip",
            "StringToNumber", "StringUpper", "Substr", "UnicodeDecode",
            "UnicodeDecodeWithOffsets", "UnicodeEncode", "UnicodeScript", "UnicodeTranscode",
            "DecodeBase64", "EncodeBase64", "UnsortedSegmentJoin",
        )
    },
    "regular expressions": {
        op: _REGEX
        for op in ("RegexFullMatch", "RegexReplace", "StaticRegexFullMatch",
                   "StaticRegexReplace")
    },
    "hashing and crossing": {
        op: _HASH
        for op in (
            "StringToHashBucket", "StringToHashBucketFast", "StringToHashBucketStrong",
            "SparseCross", "SparseCrossHashed", "SparseCrossV2", "Fingerprint",
        )
    },
    "sparse and ragged tensors": {
        op: _SPARSE
        for op in (
            "RaggedGather", "RaggedRange", "RaggedTensorFromVariant", "RaggedTensorToSparse",
            "RaggedTensorToTensor", "RaggedTensorToVariant", "RaggedCross", "SparseAdd",
            "SparseConcat", "SparseFillEmptyRows", "SparseReduceMax", "SparseReduceSum",
            "SparseReorder", "SparseReshape", "SparseSlice", "SparseSoftmax",
            "SparseTensorDenseMatMul", "SparseTensorDenseAdd", "SparseToDense",
            "SparseSegmentSumWithNumSegments", "SparseSegmentMeanWithNumSegments",
        )
    },
    "random numbers": {
        op: _RANDOM
        for op in (
            "RandomGamma", "RandomPoisson", "RandomPoissonV2", "RandomShuffle",
            "RandomStandardNormal", "RandomUniform", "RandomUniformInt", "TruncatedNormal",
            "Multinomial", "RngReadAndSkip", "RngSkip", "StatefulStandardNormalV2",
            "StatefulTruncatedNormal", "StatefulUniform", "StatefulUniformFullInt",
            "StatefulUniformInt", "StatelessMultinomial", "StatelessRandomGetAlg",
            "StatelessRandomGetKeyCounter", "StatelessRandomGetKeyCounterAlg",
            "StatelessRandomNormal", "StatelessRandomNormalV2", "StatelessRandomUniform",
            "StatelessRandomUniformFullInt", "StatelessRandomUniformFullIntV2",
            "StatelessRandomUniformInt", "StatelessRandomUniformIntV2",
            "StatelessRandomUniformV2", "StatelessTruncatedNormal",
            "StatelessTruncatedNormalV2", "StatelessShuffle",
        )
    },
    "signal processing": {
        op: _SIGNAL
        for op in ("FFT", "FFT2D", "FFT3D", "IFFT", "IFFT2D", "IFFT3D", "IRFFT", "IRFFT2D",
                   "RFFT", "RFFT2D")
    },
    "images": {
        op: _IMAGE
        for op in (
            "AdjustContrastv2", "AdjustHue", "AdjustSaturation", "CropAndResize", "DecodeBmp",
            "DecodeGif", "DecodeImage", "DecodeJpeg", "DecodePng", "EncodeJpeg", "EncodePng",
            "ExtractJpegShape", "HSVToRGB", "ImageProjectiveTransformV2",
            "ImageProjectiveTransformV3", "RGBToHSV", "ResizeArea", "ResizeBicubic",
            "ResizeBilinear", "ResizeNearestNeighbor", "ScaleAndTranslate",
            "NonMaxSuppressionV3", "NonMaxSuppressionV4", "NonMaxSuppressionV5",
        )
    },
    "checks": {op: _CHECK for op in ("Assert", "CheckNumerics", "CheckNumericsV2")},
    "the saver's file names": {op: _SAVER_NAMES for op in ("ShardedFilename",)},
    "YDF's inference": {
        op: _YDF
        for op in (
            "SimpleMLCreateModelResource", "SimpleMLInferenceOpWithHandle",
            "SimpleMLInferenceLeafIndexOpWithHandle",
        )
    },
}  # fmt: skip

#: Every op an imported model may hold → why it may.
ALLOWED_OPS: dict[str, str] = {
    op: reason for family in FAMILIES.values() for op, reason in family.items()
}
