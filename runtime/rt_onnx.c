/* rt_onnx.c: the ONNX loader. Decodes a ModelProto with protobuf-c and builds an rt_graph:
 * initializers become weights, the remaining graph inputs typed inputs, nodes map to
 * RT_OP_LIST ops with their attributes. Anything the runtime does not implement (an op,
 * a domain, an attribute kind) fails the load with an error that names it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_onnx.h"
#include "rt_tensorproto_internal.h"

#define RT_ONNX_MAX_OPSET 17

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

static bool is_default_domain(const char *domain)
{
    return !domain || !*domain || strcmp(domain, "ai.onnx") == 0;
}

/* The default-domain opset; 0 when the model imports none (then only nodes of other
 * domains may appear, and those are refused by op anyway). */
static rt_status default_opset(const Onnx__ModelProto *m, int64_t *opset, rt_error *err)
{
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (!is_default_domain(o->domain))
            continue;
        if (o->version < 1 || o->version > RT_ONNX_MAX_OPSET)
            return rt_error_set(err, RT_ERR_UNSUPPORTED,
                                "opset %lld of the default domain is not supported (1 to %d)",
                                (long long)o->version, RT_ONNX_MAX_OPSET);
        *opset = o->version;
        return RT_OK;
    }
    *opset = 0;
    return RT_OK;
}

/* Sets value v's dtype and declared shape from a ValueInfoProto; what is absent stays
 * unknown (dtype UNDEFINED, rank -1, dims -1). */
static rt_status apply_value_info(rt_graph *g, int v, const Onnx__ValueInfoProto *vi,
                                  rt_error *err)
{
    const Onnx__TypeProto *type = vi->type;
    if (!type)
        return RT_OK;
    if (type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "'%s' is not a tensor (sequence, map, "
                            "optional and sparse values are not supported)", vi->name);
    const Onnx__TypeProto__Tensor *tt = type->tensor_type;
    rt_value *val = &g->values[v];
    if (tt->elem_type != RT_DTYPE_UNDEFINED) {
        if (!rt_dtype_valid(tt->elem_type))
            return rt_error_set(err, RT_ERR_UNSUPPORTED, "'%s' has unsupported element type %d",
                                vi->name, tt->elem_type);
        val->dtype = (rt_dtype)tt->elem_type;
    }
    if (!tt->shape)
        return RT_OK;
    if (tt->shape->n_dim > RT_MAX_RANK)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "'%s' has rank %zu, more than %d",
                            vi->name, tt->shape->n_dim, RT_MAX_RANK);
    rt_shape s = {.rank = (int)tt->shape->n_dim};
    for (int i = 0; i < s.rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        s.dims[i] = -1;
        free(val->dim_params[i]);
        val->dim_params[i] = NULL;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return rt_error_set(err, RT_ERR_MODEL, "'%s' has negative dimension %lld",
                                    vi->name, (long long)d->dim_value);
            s.dims[i] = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   *d->dim_param && !(val->dim_params[i] = strdup(d->dim_param))) {
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        }
    }
    val->shape = s;
    return RT_OK;
}

static rt_status add_initializers(rt_graph *g, const Onnx__GraphProto *gp, const char *base_dir,
                                  rt_error *err)
{
    if (gp->n_sparse_initializer)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "sparse initializers are not supported");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        const char *name = str_or_empty(tp->name);
        if (!*name)
            return rt_error_set(err, RT_ERR_MODEL, "initializer %zu has no name", i);
        if (rt_graph_find_value(g, name) >= 0)
            return rt_error_set(err, RT_ERR_MODEL, "initializer '%s' is defined twice", name);
        rt_tensor *t = rt_tensorproto_to_tensor(tp, base_dir, err);
        if (!t)
            return rt_error_prefix(err, "initializer '%s': ", name);
        int v = rt_graph_add_value(g, name, RT_VALUE_WEIGHT, t->dtype, &t->shape);
        if (v < 0) {
            rt_tensor_free(t);
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        }
        g->values[v].data = t;
    }
    return RT_OK;
}

static rt_status add_inputs(rt_graph *g, const Onnx__GraphProto *gp, rt_error *err)
{
    static const rt_shape unknown = {.rank = -1};
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *name = str_or_empty(vi->name);
        if (!*name)
            return rt_error_set(err, RT_ERR_MODEL, "graph input %zu has no name", i);
        int v = rt_graph_find_value(g, name);
        if (v >= 0 && g->values[v].kind == RT_VALUE_WEIGHT)
            continue; /* IR < 4 lists initializers among the inputs */
        if (v >= 0)
            return rt_error_set(err, RT_ERR_MODEL, "graph input '%s' is declared twice", name);
        v = rt_graph_add_value(g, name, RT_VALUE_INPUT, RT_DTYPE_UNDEFINED, &unknown);
        if (v < 0 || rt_graph_add_input(g, v) < 0)
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        if (apply_value_info(g, v, vi, err) != RT_OK)
            return rt_error_prefix(err, "graph input ");
    }
    return RT_OK;
}

/* Creates a value for every node output up front so that node inputs resolve by name
 * whatever the node order (rt_graph_check then reports order problems precisely). */
static rt_status add_node_outputs(rt_graph *g, const Onnx__GraphProto *gp, rt_error *err)
{
    static const rt_shape unknown = {.rank = -1};
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        for (size_t k = 0; k < np->n_output; k++) {
            const char *name = np->output[k];
            if (!*name)
                continue;
            if (rt_graph_find_value(g, name) >= 0)
                return rt_error_set(err, RT_ERR_MODEL, "value '%s' is defined more than once",
                                    name);
            if (rt_graph_add_value(g, name, RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED,
                                   &unknown) < 0)
                return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        }
    }
    return RT_OK;
}

/* Heap copy of len bytes with a NUL appended (so never NULL for len 0 either). */
static void *copy_bytes(const void *data, size_t len)
{
    char *s = malloc(len + 1);
    if (s) {
        if (len)
            memcpy(s, data, len);
        s[len] = '\0';
    }
    return s;
}

static const char *attr_type_name(Onnx__AttributeProto__AttributeType type)
{
    switch (type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH: return "GRAPH";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: return "GRAPHS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR: return "SPARSE_TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS: return "SPARSE_TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS: return "TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO: return "TYPE_PROTO";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS: return "TYPE_PROTOS";
    default: return "UNDEFINED";
    }
}

/* Fills a (zeroed) rt_attr from an AttributeProto; on failure a may hold partial payload
 * that rt_attr_clear releases. */
static rt_status convert_attr(const Onnx__AttributeProto *ap, rt_attr *a, const char *base_dir,
                              rt_error *err)
{
    const char *name = str_or_empty(ap->name);
    if (!*name)
        return rt_error_set(err, RT_ERR_MODEL, "attribute without a name");
    if (ap->ref_attr_name && *ap->ref_attr_name)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "attribute '%s' refers to a function "
                            "attribute", name);
    if (!(a->name = strdup(name)))
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    bool ok = true;
    switch (ap->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        a->type = RT_ATTR_FLOAT;
        a->f = ap->f;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        a->type = RT_ATTR_INT;
        a->i = ap->i;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        a->type = RT_ATTR_STRING;
        a->s_len = ap->s.len;
        ok = (a->s = copy_bytes(ap->s.data, ap->s.len)) != NULL;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        a->type = RT_ATTR_TENSOR;
        if (!ap->t)
            return rt_error_set(err, RT_ERR_MODEL, "attribute '%s' has no tensor", name);
        if (!(a->t = rt_tensorproto_to_tensor(ap->t, base_dir, err)))
            return rt_error_prefix(err, "attribute '%s': ", name);
        break;
    /* Lists are allocated even when empty: a present empty list is not an absent one. */
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        a->type = RT_ATTR_FLOATS;
        a->n = (int)ap->n_floats;
        ok = (a->floats = copy_bytes(ap->floats, ap->n_floats * sizeof *a->floats)) != NULL;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        a->type = RT_ATTR_INTS;
        a->n = (int)ap->n_ints;
        ok = (a->ints = copy_bytes(ap->ints, ap->n_ints * sizeof *a->ints)) != NULL;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
        a->type = RT_ATTR_STRINGS;
        ok = (a->strings = calloc(ap->n_strings + 1, sizeof *a->strings)) != NULL;
        for (size_t i = 0; ok && i < ap->n_strings; i++, a->n++)
            ok = (a->strings[i] = copy_bytes(ap->strings[i].data, ap->strings[i].len)) != NULL;
        break;
    default:
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "attribute '%s' of type %s is not "
                            "supported", name, attr_type_name(ap->type));
    }
    return ok ? RT_OK : rt_error_set(err, RT_ERR_NOMEM, "out of memory");
}

/* Converts all attributes of a node into a new array (NULL-free on failure). */
static rt_status convert_attrs(const Onnx__NodeProto *np, const char *base_dir, rt_attr **out,
                               rt_error *err)
{
    rt_attr *attrs = calloc(np->n_attribute + 1, sizeof *attrs);
    if (!attrs)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    rt_status st = RT_OK;
    size_t i;
    for (i = 0; i < np->n_attribute && st == RT_OK; i++) {
        st = convert_attr(np->attribute[i], &attrs[i], base_dir, err);
        for (size_t k = 0; k < i && st == RT_OK; k++)
            if (strcmp(attrs[k].name, attrs[i].name) == 0)
                st = rt_error_set(err, RT_ERR_MODEL, "attribute '%s' appears twice",
                                  attrs[i].name);
    }
    if (st != RT_OK) {
        for (size_t k = 0; k < i; k++)
            rt_attr_clear(&attrs[k]);
        free(attrs);
        return st;
    }
    *out = attrs;
    return RT_OK;
}

/* Resolves value names to indices; "" (an omitted optional value) becomes -1. */
static rt_status resolve_names(const rt_graph *g, char *const *names, size_t n, int *idx,
                               rt_error *err)
{
    for (size_t i = 0; i < n; i++) {
        idx[i] = *names[i] ? rt_graph_find_value(g, names[i]) : -1;
        if (*names[i] && idx[i] < 0)
            return rt_error_set(err, RT_ERR_MODEL, "value '%s' is never defined", names[i]);
    }
    return RT_OK;
}

static rt_status add_node(rt_graph *g, const Onnx__NodeProto *np, size_t index,
                          const char *base_dir, rt_error *err)
{
    const char *op_type = str_or_empty(np->op_type);
    char synthesized[128];
    const char *name = np->name;
    if (!name || !*name) {
        snprintf(synthesized, sizeof synthesized, "%s_%zu", op_type, index);
        name = synthesized;
    }
    rt_op op = is_default_domain(np->domain) ? rt_op_from_name(op_type) : RT_OP_COUNT;
    if (op == RT_OP_COUNT)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "unsupported op '%s' (domain '%s') in "
                            "node '%s'", op_type, str_or_empty(np->domain), name);
    if (g->opset == 0)
        return rt_error_set(err, RT_ERR_MODEL, "node '%s' (%s) is in the default domain, "
                            "which the model does not import", name, op_type);
    int *in = malloc((np->n_input + np->n_output + 1) * sizeof *in);
    if (!in)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    int *out = in + np->n_input;
    rt_attr *attrs = NULL;
    rt_status st = resolve_names(g, np->input, np->n_input, in, err);
    if (st == RT_OK)
        st = resolve_names(g, np->output, np->n_output, out, err);
    if (st == RT_OK)
        st = convert_attrs(np, base_dir, &attrs, err);
    if (st == RT_OK && rt_graph_add_node(g, name, op, in, (int)np->n_input, out,
                                         (int)np->n_output, attrs, (int)np->n_attribute) < 0)
        st = rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    free(in);
    return st == RT_OK ? RT_OK : rt_error_prefix(err, "node '%s' (%s): ", name, op_type);
}

static rt_status add_outputs(rt_graph *g, const Onnx__GraphProto *gp, rt_error *err)
{
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        const char *name = str_or_empty(vi->name);
        int v = rt_graph_find_value(g, name);
        if (v < 0)
            return rt_error_set(err, RT_ERR_MODEL, "graph output '%s' is never defined", name);
        if (g->values[v].kind == RT_VALUE_INTERMEDIATE &&
            apply_value_info(g, v, vi, err) != RT_OK)
            return rt_error_prefix(err, "graph output ");
        if (rt_graph_add_output(g, v) < 0)
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    }
    return RT_OK;
}

static rt_graph *build_graph(const Onnx__ModelProto *m, const char *base_dir, rt_error *err)
{
    const Onnx__GraphProto *gp = m->graph;
    int64_t opset = 0;
    if (!gp) {
        rt_error_set(err, RT_ERR_MODEL, "model has no graph");
        return NULL;
    }
    if (default_opset(m, &opset, err) != RT_OK)
        return NULL;
    rt_graph *g = rt_graph_create(str_or_empty(gp->name));
    if (!g) {
        rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    g->opset = opset;
    rt_status st = add_initializers(g, gp, base_dir, err);
    if (st == RT_OK)
        st = add_inputs(g, gp, err);
    if (st == RT_OK)
        st = add_node_outputs(g, gp, err);
    for (size_t i = 0; i < gp->n_node && st == RT_OK; i++)
        st = add_node(g, gp->node[i], i, base_dir, err);
    if (st == RT_OK)
        st = add_outputs(g, gp, err);
    if (st == RT_OK)
        st = rt_graph_check(g, err);
    if (st != RT_OK) {
        rt_graph_free(g);
        return NULL;
    }
    return g;
}

rt_graph *rt_onnx_load_bytes(const void *data, size_t size, const char *base_dir, rt_error *err)
{
    /* protobuf caps messages at 2 GiB; it also keeps every count below INT_MAX. */
    if (size > (size_t)INT32_MAX) {
        rt_error_set(err, RT_ERR_UNSUPPORTED, "model of %zu bytes exceeds the 2 GiB protobuf "
                     "limit (store weights as external data)", size);
        return NULL;
    }
    Onnx__ModelProto *m = (Onnx__ModelProto *)rt_pb_unpack(&onnx__model_proto__descriptor, data,
                                                           size, "ONNX ModelProto", err);
    if (!m)
        return NULL;
    rt_graph *g = build_graph(m, base_dir, err);
    onnx__model_proto__free_unpacked(m, NULL);
    return g;
}

rt_graph *rt_onnx_load_file(const char *path, rt_error *err)
{
    size_t size;
    const void *data = rt_file_map(path, &size, err);
    if (!data)
        return NULL;
    const char *slash = strrchr(path, '/');
    char *dir = !slash ? strdup(".") : slash == path ? strdup("/")
                                                     : copy_bytes(path, (size_t)(slash - path));
    rt_graph *g = NULL;
    if (!dir)
        rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    else if (!(g = rt_onnx_load_bytes(data, size, dir, err)))
        rt_error_prefix(err, "%s: ", path);
    free(dir);
    rt_file_unmap(data, size);
    return g;
}
