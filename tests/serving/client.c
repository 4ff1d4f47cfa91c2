/* A minimal serving client on the TensorFlow C API (the library TensorFlow
 * Serving embeds), built against the headers and libraries inside the
 * TensorFlow wheel.
 *
 *   client EXPORT_DIR SIGNATURE INPUT ROWS COLS OUTPUT
 *
 * Loads the SavedModel at EXPORT_DIR with the "serve" tag, looks SIGNATURE up
 * in the loaded MetaGraphDef's signature_def map (its single input must be
 * float32, its single output is fetched), feeds it the float32 [ROWS, COLS]
 * matrix stored row-major and raw in the file INPUT, runs the session and
 * writes the output tensor's raw bytes to the file OUTPUT. It prints, one per
 * line:
 *
 *   input <key> <tensor name>
 *   output <key> <tensor name> <TF_DataType number> <dim0>[,<dim1>...]
 *
 * Any failure prints "error: ..." to stderr and exits with status 1; bad
 * arguments exit with status 2.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensorflow/c/c_api.h"

#ifdef __GNUC__
__attribute__((format(printf, 1, 2)))
#endif
static _Noreturn void die(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fputs("error: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  exit(1);
}

static void check(TF_Status *status, const char *what) {
  if (TF_GetCode(status) != TF_OK) die("%s: %s", what, TF_Message(status));
}

/* ----------------------------------------------------------------------
 * Just enough of the protobuf wire format to read
 *   MetaGraphDef.signature_def (5): map<string, SignatureDef>
 *   SignatureDef.inputs (1), .outputs (2): map<string, TensorInfo>
 *   TensorInfo.name (1): string, .dtype (2): DataType
 * A map field is a repeated message {key = 1; value = 2}.
 */
typedef struct {
  const uint8_t *p, *end;
} Slice;

static int read_varint(Slice *s, uint64_t *value) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && s->p < s->end; shift += 7) {
    uint8_t byte = *s->p++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *value = v;
      return 1;
    }
  }
  return 0;
}

/* Reads the next field of message `s`: its number, and its payload in `sub`
 * (length-delimited) or `varint`. Returns 1, 0 at the end, or dies. */
static int next_field(Slice *s, uint32_t *number, Slice *sub,
                      uint64_t *varint) {
  uint64_t tag, len;
  if (s->p == s->end) return 0;
  if (!read_varint(s, &tag)) die("corrupt MetaGraphDef: bad tag");
  *number = (uint32_t)(tag >> 3);
  sub->p = sub->end = NULL;
  *varint = 0;
  switch (tag & 7) {
    case 0:
      if (!read_varint(s, varint)) die("corrupt MetaGraphDef: bad varint");
      return 1;
    case 1:
      len = 8;
      break;
    case 5:
      len = 4;
      break;
    case 2:
      if (!read_varint(s, &len)) die("corrupt MetaGraphDef: bad length");
      break;
    default:
      die("corrupt MetaGraphDef: unsupported wire type");
  }
  if (len > (uint64_t)(s->end - s->p))
    die("corrupt MetaGraphDef: a field overruns its message");
  if ((tag & 7) == 2) {
    sub->p = s->p;
    sub->end = s->p + len;
  }
  s->p += len;
  return 1;
}

static int slice_equals(Slice s, const char *text) {
  size_t n = strlen(text);
  return (size_t)(s.end - s.p) == n && memcmp(s.p, text, n) == 0;
}

static char *slice_dup(Slice s) {
  size_t n = (size_t)(s.end - s.p);
  char *out = malloc(n + 1);
  if (!out) die("out of memory");
  memcpy(out, s.p, n);
  out[n] = '\0';
  return out;
}

/* Splits map entry `entry` into its key and value. */
static void map_entry(Slice entry, Slice *key, Slice *value) {
  uint32_t number;
  uint64_t varint;
  Slice sub;
  key->p = key->end = value->p = value->end = NULL;
  while (next_field(&entry, &number, &sub, &varint)) {
    if (number == 1) *key = sub;
    if (number == 2) *value = sub;
  }
}

/* Finds the value of key `key` in map field `field` of message `msg`. */
static int map_lookup(Slice msg, uint32_t field, const char *key,
                      Slice *value) {
  uint32_t number;
  uint64_t varint;
  Slice sub, k;
  while (next_field(&msg, &number, &sub, &varint)) {
    if (number != field || !sub.p) continue;
    map_entry(sub, &k, value);
    if (k.p && slice_equals(k, key)) return 1;
  }
  return 0;
}

typedef struct {
  char *key, *name;
  int dtype;
} TensorInfo;

/* The only entry of map field `field` (inputs or outputs) of `signature`. */
static TensorInfo only_tensor(Slice signature, uint32_t field,
                              const char *signature_name, const char *what) {
  TensorInfo info = {NULL, NULL, 0};
  uint32_t number;
  uint64_t varint;
  Slice sub, key, value;
  int count = 0;
  while (next_field(&signature, &number, &sub, &varint)) {
    if (number != field || !sub.p) continue;
    if (++count > 1)
      die("signature %s has more than one %s; this client handles one",
          signature_name, what);
    map_entry(sub, &key, &value);
    if (!key.p || !value.p) die("corrupt SignatureDef %s", signature_name);
    info.key = slice_dup(key);
    while (next_field(&value, &number, &sub, &varint)) {
      if (number == 1 && sub.p) info.name = slice_dup(sub);
      if (number == 2) info.dtype = (int)varint;
    }
  }
  if (count == 0) die("signature %s has no %s", signature_name, what);
  if (!info.name) die("the %s of signature %s is not a dense tensor", what,
                       signature_name);
  return info;
}

/* "op:index" (or "op") -> the graph's TF_Output. */
static TF_Output graph_output(TF_Graph *graph, const char *tensor_name) {
  char *op_name = strdup(tensor_name);
  if (!op_name) die("out of memory");
  char *colon = strrchr(op_name, ':');
  TF_Output out;
  out.index = 0;
  if (colon) {
    *colon = '\0';
    out.index = atoi(colon + 1);
  }
  out.oper = TF_GraphOperationByName(graph, op_name);
  if (!out.oper) die("no operation %s in the graph", op_name);
  free(op_name);
  return out;
}

/* ---------------------------------------------------------------------- */

static float *read_matrix(const char *path, int64_t rows, int64_t cols) {
  size_t count = (size_t)(rows * cols);
  float *data = malloc(count * sizeof(float) + 1);
  FILE *f = fopen(path, "rb");
  if (!data) die("out of memory");
  if (!f) die("cannot open the input %s", path);
  if (fread(data, sizeof(float), count, f) != count || fgetc(f) != EOF)
    die("%s does not hold exactly ROWS x COLS float32 values", path);
  fclose(f);
  return data;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr,
            "usage: %s EXPORT_DIR SIGNATURE INPUT ROWS COLS OUTPUT\n",
            argv[0]);
    return 2;
  }
  const char *export_dir = argv[1], *signature_name = argv[2];
  const int64_t rows = atoll(argv[4]), cols = atoll(argv[5]);
  if (rows < 0 || cols <= 0) {
    fprintf(stderr, "error: ROWS must be >= 0 and COLS > 0\n");
    return 2;
  }
  float *batch = read_matrix(argv[3], rows, cols);

  /* Load the SavedModel as TF Serving does: the "serve" MetaGraph, its
   * variables restored into a new session. */
  TF_Status *status = TF_NewStatus();
  TF_SessionOptions *options = TF_NewSessionOptions();
  TF_Graph *graph = TF_NewGraph();
  TF_Buffer *meta_graph = TF_NewBuffer();
  const char *tags[] = {"serve"};
  TF_Session *session = TF_LoadSessionFromSavedModel(
      options, NULL, export_dir, tags, 1, graph, meta_graph, status);
  check(status, "TF_LoadSessionFromSavedModel");

  /* The signature's input and output tensors, from the MetaGraphDef. */
  Slice meta = {(const uint8_t *)meta_graph->data,
                (const uint8_t *)meta_graph->data + meta_graph->length};
  Slice signature;
  if (!map_lookup(meta, 5, signature_name, &signature))
    die("no signature %s in the SavedModel", signature_name);
  TensorInfo in = only_tensor(signature, 1, signature_name, "input");
  TensorInfo out = only_tensor(signature, 2, signature_name, "output");
  if (in.dtype != TF_FLOAT)
    die("input %s of signature %s is not float32", in.key, signature_name);
  printf("input %s %s\n", in.key, in.name);

  /* Feed the batch, fetch the output. */
  const int64_t dims[2] = {rows, cols};
  TF_Tensor *input = TF_AllocateTensor(TF_FLOAT, dims, 2,
                                       (size_t)(rows * cols) * sizeof(float));
  if (!input) die("TF_AllocateTensor failed");
  if (rows > 0)
    memcpy(TF_TensorData(input), batch, (size_t)(rows * cols) * sizeof(float));
  TF_Output feed = graph_output(graph, in.name);
  TF_Output fetch = graph_output(graph, out.name);
  TF_Tensor *result = NULL;
  TF_SessionRun(session, NULL, &feed, &input, 1, &fetch, &result, 1, NULL, 0,
                NULL, status);
  check(status, "TF_SessionRun");

  printf("output %s %s %d ", out.key, out.name, (int)TF_TensorType(result));
  for (int i = 0; i < TF_NumDims(result); ++i)
    printf(i ? ",%lld" : "%lld", (long long)TF_Dim(result, i));
  printf("\n");

  FILE *f = fopen(argv[6], "wb");
  if (!f) die("cannot open the output %s", argv[6]);
  size_t size = TF_TensorByteSize(result);
  if ((size && fwrite(TF_TensorData(result), 1, size, f) != size) ||
      fclose(f) != 0)
    die("cannot write the output %s", argv[6]);

  TF_DeleteTensor(result);
  TF_DeleteTensor(input);
  TF_CloseSession(session, status);
  check(status, "TF_CloseSession");
  TF_DeleteSession(session, status);
  check(status, "TF_DeleteSession");
  TF_DeleteBuffer(meta_graph);
  TF_DeleteGraph(graph);
  TF_DeleteSessionOptions(options);
  TF_DeleteStatus(status);
  free(in.key);
  free(in.name);
  free(out.key);
  free(out.name);
  free(batch);
  return 0;
}
