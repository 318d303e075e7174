#ifndef VMM86_BENCH_MD5_H
#define VMM86_BENCH_MD5_H
#ifdef __cplusplus
extern "C" {
#endif
void md5(const unsigned char* data, unsigned int len, unsigned char out[16]);
#ifdef __cplusplus
}
#endif
#endif
