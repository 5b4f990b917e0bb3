//go:build amd64 && !purego

#include "textflag.h"

// STOPS sets each byte of out where that byte of in stops: below Y4's
// (signed), or equal to Y1's, Y2's or Y3's; t1, t2 and t3 are scratch.
#define STOPS(in, out, t1, t2, t3) \
	VPCMPGTB in, Y4, out \
	VPCMPEQB in, Y1, t1  \
	VPCMPEQB in, Y2, t2  \
	VPCMPEQB in, Y3, t3  \
	VPOR     t1, out, out \
	VPOR     t3, t2, t2   \
	VPOR     t2, out, out

// func skipStops32(p unsafe.Pointer, n int, set *[4]byte) (int, bool)
//
// Scans p[0:n] 32 bytes at a time while 32 are left: a byte stops when it
// is below set[3] as a signed byte (set[3] is 0x20: controls, and every
// byte at or above 0x80) or equals set[0], set[1] or set[2]. It returns
// the offset of the first such byte and true, or the offset where fewer
// than 32 bytes are left and false.
TEXT ·skipStops32(SB), NOSPLIT, $0-33
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ set+16(FP), DX
	VPBROADCASTB 0(DX), Y1
	VPBROADCASTB 1(DX), Y2
	VPBROADCASTB 2(DX), Y3
	VPBROADCASTB 3(DX), Y4
	XORQ BX, BX

loop64:
	LEAQ 64(BX), R8
	CMPQ R8, CX
	JA   tail32
	VMOVDQU 0(SI)(BX*1), Y0
	VMOVDQU 32(SI)(BX*1), Y9
	STOPS(Y0, Y5, Y6, Y7, Y8)
	STOPS(Y9, Y10, Y11, Y12, Y13)
	VPOR Y10, Y5, Y14
	VPTEST Y14, Y14
	JNZ  found64
	MOVQ R8, BX
	JMP  loop64

found64:
	VPMOVMSKB Y5, AX
	TESTL AX, AX
	JNZ  found
	VPMOVMSKB Y10, AX
	ADDQ $32, BX
	JMP  found

tail32:
	LEAQ 32(BX), R8
	CMPQ R8, CX
	JA   none
	VMOVDQU 0(SI)(BX*1), Y0
	STOPS(Y0, Y5, Y6, Y7, Y8)
	VPMOVMSKB Y5, AX
	TESTL AX, AX
	JNZ  found
	MOVQ R8, BX

none:
	VZEROUPPER
	MOVQ BX, ret+24(FP)
	MOVB $0, ret1+32(FP)
	RET

found:
	BSFL AX, AX
	ADDQ AX, BX
	VZEROUPPER
	MOVQ BX, ret+24(FP)
	MOVB $1, ret1+32(FP)
	RET

// func hasAVX2() bool
//
// CPUID and XGETBV: the CPU has AVX2 and the system saves the YMM
// registers.
TEXT ·hasAVX2(SB), NOSPLIT, $0-1
	XORL AX, AX
	XORL CX, CX
	CPUID
	CMPL AX, $7
	JB   no
	MOVL $1, AX
	XORL CX, CX
	CPUID
	ANDL $0x18000000, CX // OSXSAVE and AVX
	CMPL CX, $0x18000000
	JNE  no
	XORL CX, CX
	XGETBV
	ANDL $6, AX // XMM and YMM state
	CMPL AX, $6
	JNE  no
	MOVL $7, AX
	XORL CX, CX
	CPUID
	BTL  $5, BX // AVX2
	JCC  no
	MOVB $1, ret+0(FP)
	RET

no:
	MOVB $0, ret+0(FP)
	RET
