//go:build amd64 && !purego

#include "textflag.h"

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
	VPCMPGTB Y0, Y4, Y5
	VPCMPEQB Y0, Y1, Y6
	VPCMPEQB Y0, Y2, Y7
	VPCMPEQB Y0, Y3, Y8
	VPOR Y6, Y5, Y5
	VPOR Y8, Y7, Y7
	VPOR Y7, Y5, Y5
	VPCMPGTB Y9, Y4, Y10
	VPCMPEQB Y9, Y1, Y11
	VPCMPEQB Y9, Y2, Y12
	VPCMPEQB Y9, Y3, Y13
	VPOR Y11, Y10, Y10
	VPOR Y13, Y12, Y12
	VPOR Y12, Y10, Y10
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
	VPCMPGTB Y0, Y4, Y5
	VPCMPEQB Y0, Y1, Y6
	VPCMPEQB Y0, Y2, Y7
	VPCMPEQB Y0, Y3, Y8
	VPOR Y6, Y5, Y5
	VPOR Y8, Y7, Y7
	VPOR Y7, Y5, Y5
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
